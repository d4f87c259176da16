; kv.s — a key-value server. Requests arrive as NIC packets, answers leave as
; NIC packets; retried requests (same client id + request id) get the
; remembered answer and are applied once. Packet format: see ../kv.ts.
;
; Interrupt driven: the NIC handler parses, executes and answers one request,
; then re-arms the receive buffer. The main loop only waits.

.equ BUF_SIZE, 1024
.equ MAXKEY, 60
.equ MAXVAL, 188
.equ MAXID, 64
.equ KV_SLOTS, 1024        ; open addressing, 256-byte slots
.equ DD_SLOTS, 1024        ; dedup table, 320-byte slots
.equ DD_SLOT, 320
.equ DD_PROBES, 16
.equ ST_OK, 0
.equ ST_NOTFOUND, 1
.equ ST_BAD, 2
.equ ST_TOOLARGE, 3
.equ ST_NAN, 4
.equ ST_FULL, 5
.equ OP_GET, 1
.equ OP_PUT, 2
.equ OP_INCR, 3
.equ OP_APPEND, 4

.data
.align 4
rx:       .space BUF_SIZE
tx:       .space BUF_SIZE
p_id:     .word 0        ; address of the id bytes (clen, client, rlen, request)
p_idlen:  .word 0
p_key:    .word 0
p_klen:   .word 0
p_val:    .word 0
p_vlen:   .word 0
dd_seq:   .word 0        ; responses stored so far (age of dedup entries)
applied:  .word 0        ; requests executed (not replayed)
replayed: .word 0        ; retries answered from the dedup table
numbuf:   .space 16
.align 4096
; KV slot: +0 klen+1 (0 = empty), +4 key[60], +64 vlen, +68 value[188]
kvtab:    .space KV_SLOTS * 256
; dedup slot: +0 idlen (0 = empty), +4 id[64], +68 response length, +72 response[244], +316 sequence
ddtab:    .space DD_SLOTS * DD_SLOT

.text
start:
    mov r1, on_nic
    out PORT_IVEC + IRQ_NIC, r1
    call arm_rx
    ei
idle:
    wfi
    jmp idle

arm_rx:
    mov r1, rx
    out PORT_NIC_RX_ADDR, r1
    out PORT_NIC_RX_CAP, BUF_SIZE
    ret

on_nic:
    call handle
    call arm_rx
    iret

; ---------------------------------------------------------------- request
handle:
    in r12, PORT_NIC_RX_LEN
    blt r12, 4, h_drop          ; no tag: nothing to answer
    ldw r1, [rx]
    stw r1, [tx]                ; echo the tag
    blt r12, 6, h_bad
    ldb r3, [rx + 5]            ; clen
    add r4, r3, 6               ; offset of rlen
    bge r4, r12, h_bad
    ldb r5, [r4 + rx]           ; rlen
    add r6, r4, 1
    add r6, r6, r5              ; offset of klen
    sub r7, r6, 5               ; idlen = 2 + clen + rlen
    bgt r7, MAXID, h_bad
    mov r8, rx + 5
    stw r8, [p_id]
    stw r7, [p_idlen]
    bge r6, r12, h_bad
    ldb r9, [r6 + rx]           ; klen
    bgt r9, MAXKEY, h_toolarge
    add r10, r6, 1              ; key offset
    add r1, r10, rx
    stw r1, [p_key]
    stw r9, [p_klen]
    add r10, r10, r9            ; vlen offset
    add r1, r10, 2
    bgt r1, r12, h_bad
    ldb r2, [r10 + rx]
    ldb r3, [r10 + rx + 1]
    shl r3, r3, 8
    or r2, r2, r3               ; vlen
    add r1, r1, r2
    bgt r1, r12, h_bad
    bgt r2, MAXVAL, h_toolarge
    add r10, r10, rx + 2
    stw r10, [p_val]
    stw r2, [p_vlen]
    call dd_find                ; r3 = slot, r4 = 1 when this request was seen
    beq r4, 1, h_replay
    push r3
    ldb r2, [rx + 4]            ; op
    beq r2, OP_GET, h_get
    beq r2, OP_PUT, h_put
    beq r2, OP_INCR, h_incr
    beq r2, OP_APPEND, h_append
    mov r1, ST_BAD
    call resp_status
    jmp h_store
h_get:
    call do_get
    jmp h_store
h_put:
    call do_put
    jmp h_store
h_incr:
    call do_incr
    jmp h_store
h_append:
    call do_append
h_store:                        ; remember the response (r0 = its length)
    pop r3
    ldw r1, [dd_seq]
    add r1, r1, 1
    stw r1, [dd_seq]
    stw r1, [r3 + 316]
    ldw r1, [p_idlen]
    stw r1, [r3]
    ldw r2, [p_id]
    add r4, r3, 4
    memcpy r4, r2, r1
    stw r0, [r3 + 68]
    add r4, r3, 72
    mov r5, tx + 4
    memcpy r4, r5, r0
    ldw r1, [applied]
    add r1, r1, 1
    stw r1, [applied]
    jmp h_send
h_replay:
    ldw r0, [r3 + 68]
    mov r4, tx + 4
    add r5, r3, 72
    memcpy r4, r5, r0
    ldw r1, [replayed]
    add r1, r1, 1
    stw r1, [replayed]
h_send:                         ; r0 = response length after the tag
    add r0, r0, 4
    mov r1, tx
    out PORT_NIC_TX_ADDR, r1
    out PORT_NIC_TX_LEN, r0
h_drop:
    ret
h_bad:
    mov r1, ST_BAD
    call resp_status
    jmp h_send
h_toolarge:
    mov r1, ST_TOOLARGE
    call resp_status
    jmp h_send

; resp_status(r1 = status) → r0 = 3
resp_status:
    stb r1, [tx + 4]
    mov r2, 0
    stb r2, [tx + 5]
    stb r2, [tx + 6]
    mov r0, 3
    ret

; resp_value(r1 = status, r2 = addr, r3 = len) → r0 = 3 + len
resp_value:
    stb r1, [tx + 4]
    stb r3, [tx + 5]
    shr r4, r3, 8
    stb r4, [tx + 6]
    mov r5, tx + 7
    memcpy r5, r2, r3
    add r0, r3, 3
    ret

; ------------------------------------------------------------------ dedup
; dd_find → r3 = slot address, r4 = 1 found / 0 free (or evicted) slot
dd_find:
    ldw r1, [p_id]
    ldw r2, [p_idlen]
    hash r5, r1, r2
    mov r6, 0
df_loop:
    add r7, r5, r6
    and r7, r7, DD_SLOTS - 1
    mul r3, r7, DD_SLOT
    add r3, r3, ddtab
    ldw r8, [r3]
    beq r8, 0, df_free
    bne r8, r2, df_next
    add r9, r3, 4
    memcmp r10, r9, r1, r2
    beq r10, 0, df_found
df_next:
    add r6, r6, 1
    blt r6, DD_PROBES, df_loop
    mov r6, 0                   ; all probed slots busy: evict the oldest of them
    mov r11, -1
de_loop:
    add r7, r5, r6
    and r7, r7, DD_SLOTS - 1
    mul r3, r7, DD_SLOT
    add r3, r3, ddtab
    ldw r8, [r3 + 316]
    bgeu r8, r11, de_next
    mov r11, r8
    mov r13, r3
de_next:
    add r6, r6, 1
    blt r6, DD_PROBES, de_loop
    mov r3, r13
df_free:
    mov r4, 0
    ret
df_found:
    mov r4, 1
    ret

; -------------------------------------------------------------------- table
; kv_find → r3 = slot address, r4 = 1 found / 0 free slot / -1 table full
kv_find:
    ldw r1, [p_key]
    ldw r2, [p_klen]
    add r11, r2, 1
    hash r5, r1, r2
    mov r6, 0
kf_loop:
    add r7, r5, r6
    and r7, r7, KV_SLOTS - 1
    shl r3, r7, 8
    add r3, r3, kvtab
    ldw r8, [r3]
    beq r8, 0, kf_free
    bne r8, r11, kf_next
    add r9, r3, 4
    memcmp r10, r9, r1, r2
    beq r10, 0, kf_found
kf_next:
    add r6, r6, 1
    blt r6, KV_SLOTS, kf_loop
    mov r4, -1
    ret
kf_free:
    mov r4, 0
    ret
kf_found:
    mov r4, 1
    ret

; set_key(r3 = slot): writes the request's key into the slot
set_key:
    ldw r1, [p_key]
    ldw r2, [p_klen]
    add r5, r2, 1
    stw r5, [r3]
    add r5, r3, 4
    memcpy r5, r1, r2
    ret

; answer with the value held in slot r3
resp_slot:
    mov r1, ST_OK
    add r2, r3, 68
    ldw r3, [r3 + 64]
    jmp resp_value

full:
    mov r1, ST_FULL
    jmp resp_status
nan:
    mov r1, ST_NAN
    jmp resp_status

do_get:
    call kv_find
    beq r4, 1, resp_slot
    mov r1, ST_NOTFOUND
    jmp resp_status

do_put:
    call kv_find
    blt r4, 0, full
    call set_key
    ldw r2, [p_val]
    ldw r1, [p_vlen]
    stw r1, [r3 + 64]
    add r5, r3, 68
    memcpy r5, r2, r1
    jmp resp_slot

do_append:
    call kv_find
    blt r4, 0, full
    beq r4, 1, da_have
    call set_key
    mov r1, 0
    stw r1, [r3 + 64]
da_have:
    ldw r6, [r3 + 64]
    ldw r7, [p_vlen]
    add r8, r6, r7
    bgt r8, MAXVAL, da_toolarge
    add r9, r3, 68
    add r9, r9, r6
    ldw r2, [p_val]
    memcpy r9, r2, r7
    stw r8, [r3 + 64]
    jmp resp_slot
da_toolarge:
    mov r1, ST_TOOLARGE
    jmp resp_status

; incr: value += 1 (or += the request's value, a decimal delta); a missing key counts as 0
do_incr:
    call kv_find
    blt r4, 0, full
    mov r10, 0
    bne r4, 1, di_delta
    add r1, r3, 68
    ldw r2, [r3 + 64]
    call parse_int
    beq r4, 0, nan
    mov r10, r0
di_delta:
    mov r11, 1
    ldw r2, [p_vlen]
    beq r2, 0, di_apply
    ldw r1, [p_val]
    call parse_int
    beq r4, 0, nan
    mov r11, r0
di_apply:
    add r10, r10, r11
    call set_key
    add r1, r3, 68
    mov r2, r10
    call format_int
    stw r0, [r3 + 64]
    jmp resp_slot

; parse_int(r1 = addr, r2 = len) → r0 = value, r4 = 1 ok / 0 not a number. Keeps r3.
parse_int:
    mov r0, 0
    mov r4, 0
    beq r2, 0, pi_ret
    mov r5, 0
    mov r6, 0
    ldb r7, [r1]
    bne r7, '-', pi_loop
    mov r6, 1
    mov r5, 1
    beq r2, 1, pi_ret
pi_loop:
    bge r5, r2, pi_done
    add r8, r1, r5
    ldb r7, [r8]
    blt r7, '0', pi_bad
    bgt r7, '9', pi_bad
    mul r0, r0, 10
    sub r7, r7, '0'
    add r0, r0, r7
    add r5, r5, 1
    jmp pi_loop
pi_done:
    mov r4, 1
    beq r6, 0, pi_ret
    neg r0, r0
pi_ret:
    ret
pi_bad:
    mov r4, 0
    ret

; format_int(r1 = addr, r2 = value) → r0 = length of the decimal text. Keeps r3.
format_int:
    mov r0, 0
    mov r6, r2
    bge r6, 0, fi_pos
    mov r7, '-'
    stb r7, [r1]
    mov r0, 1
    neg r6, r6
fi_pos:
    mov r5, 0
fi_digit:
    remu r7, r6, 10
    add r7, r7, '0'
    stb r7, [r5 + numbuf]
    add r5, r5, 1
    divu r6, r6, 10
    bne r6, 0, fi_digit
fi_copy:
    sub r5, r5, 1
    ldb r7, [r5 + numbuf]
    add r8, r1, r0
    stb r7, [r8]
    add r0, r0, 1
    bgt r5, 0, fi_copy
    ret
