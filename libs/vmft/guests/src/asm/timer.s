; timer.s — a timer-driven guest. On every timer tick it reads the clock and
; random registers (non-deterministic inputs) and folds them into a running
; checksum and a ring of the last 16 samples. A query packet returns the tick
; count, checksum and the last sample; a set-period packet reprograms the timer.
; Packet format: see ../timer.ts.

.equ PERIOD_MS, 10
.equ OP_QUERY, 1
.equ OP_PERIOD, 2

.data
.align 4
rx:         .space 64
tx:         .space 64
ticks:      .word 0
sum:        .word 0
last_lo:    .word 0
last_hi:    .word 0
last_rand:  .word 0
ring:       .space 16 * 8      ; (clock low, random) of the last 16 ticks

.text
start:
    mov r1, on_tick
    out PORT_IVEC + IRQ_TIMER, r1
    mov r1, on_nic
    out PORT_IVEC + IRQ_NIC, r1
    out PORT_TIMER_PERIOD, PERIOD_MS
    call arm_rx
    ei
idle:
    wfi
    jmp idle

arm_rx:
    mov r1, rx
    out PORT_NIC_RX_ADDR, r1
    out PORT_NIC_RX_CAP, 64
    ret

on_tick:
    push r1
    push r2
    push r3
    push r4
    in r1, PORT_CLOCK
    in r2, PORT_CLOCK_HI
    in r3, PORT_RANDOM
    stw r1, [last_lo]
    stw r2, [last_hi]
    stw r3, [last_rand]
    ldw r4, [sum]
    mul r4, r4, 31
    add r4, r4, r1
    xor r4, r4, r3
    mul r4, r4, 0x01000193
    add r4, r4, r2
    stw r4, [sum]
    ldw r4, [ticks]
    and r2, r4, 15
    shl r2, r2, 3
    stw r1, [r2 + ring]
    stw r3, [r2 + ring + 4]
    add r4, r4, 1
    stw r4, [ticks]
    pop r4
    pop r3
    pop r2
    pop r1
    iret

on_nic:
    push r1
    push r2
    in r1, PORT_NIC_RX_LEN
    blt r1, 4, n_done
    ldw r2, [rx]
    stw r2, [tx]                ; tag
    mov r2, 0
    blt r1, 5, n_bad
    ldb r2, [rx + 4]
    beq r2, OP_QUERY, n_reply
    bne r2, OP_PERIOD, n_bad
    blt r1, 12, n_bad
    ldw r2, [rx + 8]
    out PORT_TIMER_PERIOD, r2
n_reply:
    mov r2, 0
    stw r2, [tx + 4]            ; status 0 + padding
    ldw r2, [ticks]
    stw r2, [tx + 8]
    ldw r2, [sum]
    stw r2, [tx + 12]
    ldw r2, [last_lo]
    stw r2, [tx + 16]
    ldw r2, [last_hi]
    stw r2, [tx + 20]
    ldw r2, [last_rand]
    stw r2, [tx + 24]
    in r2, PORT_TIMER_PERIOD
    stw r2, [tx + 28]
    mov r1, 32
    jmp n_send
n_bad:
    mov r2, 2
    stw r2, [tx + 4]
    mov r1, 8
n_send:
    mov r2, tx
    out PORT_NIC_TX_ADDR, r2
    out PORT_NIC_TX_LEN, r1
n_done:
    call arm_rx
    pop r2
    pop r1
    iret
