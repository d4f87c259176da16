; cpu.s — compute-bound guest for the speed benchmark: a sieve of
; Eratosthenes over N numbers, repeated `rounds` times (patch the word to
; change it). After each round it stores the prime count and a checksum
; (sum of all primes, mod 2^32) and counts the round; then it halts.
; Expected per round for N = 65536: 6542 primes, sum 202288087.

.equ N, 65536

.data
.align 4
rounds:     .word 0x7fffffff
rounds_done: .word 0
primes:     .word 0
checksum:   .word 0
.align 4096
flags:      .space N

.text
start:
    ldw r10, [rounds]
    mov r11, 0                  ; rounds done
round:
    bge r11, r10, finish
    mov r1, flags
    mov r2, 0
    mov r3, N
    memset r1, r2, r3
    mov r4, 2                   ; i
    mov r5, 0                   ; count
    mov r9, 0                   ; sum
outer:
    bge r4, N, round_done
    ldb r6, [r4 + flags]
    bne r6, 0, next
    add r5, r5, 1
    add r9, r9, r4
    mul r7, r4, r4
    bgeu r7, N, next
inner:
    stb r4, [r7 + flags]
    add r7, r7, r4
    blt r7, N, inner
next:
    add r4, r4, 1
    jmp outer
round_done:
    stw r5, [primes]
    stw r9, [checksum]
    add r11, r11, 1
    stw r11, [rounds_done]
    jmp round
finish:
    mov r1, r5
    halt
