; kv.s — a key-value server with client sessions (exactly-once). Requests
; arrive as NIC packets, answers leave as NIC packets. Packet format and the
; session rules: see ../kv.ts.
;
; Sessions (Raft dissertation §6.3): a client opens a session (OP_OPEN; the id
; is assigned here, deterministically), then numbers its requests 1, 2, 3, …
; and sends with each the lowest seq whose answer it has not received yet
; (ackBelow). The guest remembers the answers of seqs in [ackBelow, ackBelow +
; SESS_WIN) and forgets the rest. A retry of a remembered seq gets the
; remembered answer and is not applied again; a seq below ackBelow is refused
; (ST_ACKED), never applied; a seq at or beyond ackBelow + SESS_WIN is refused
; (ST_WINDOW); an unknown or expired session is refused (ST_EXPIRED). When all
; SESS_MAX slots are taken, opening a session expires the least recently used
; one (a logical clock counts requests: no host clock).
;
; Interrupt driven: the NIC handler parses, executes and answers one request,
; then re-arms the receive buffer. The main loop only waits.

.equ BUF_SIZE, 1024
.equ MAXKEY, 60
.equ MAXVAL, 188
.equ KV_SLOTS, 1024        ; open addressing, 256-byte slots
.equ SESS_MAX, 256         ; sessions (a power of two: the id's low 8 bits are the slot)
.equ SESS_BITS, 8
.equ SESS_HDR, 16          ; +0 id (0 = free), +4 ack mark, +8 last used (logical clock), +12 generation
.equ SESS_WIN, 8           ; remembered answers per session (a power of two)
.equ ENT_SIZE, 200         ; +0 seq (0 = empty), +4 response length, +8 response (status, vlen, value)
.equ HDR_LEN, 20           ; tag, op + 3 pad, session, seq, ackBelow
.equ ST_OK, 0
.equ ST_NOTFOUND, 1
.equ ST_BAD, 2
.equ ST_TOOLARGE, 3
.equ ST_NAN, 4
.equ ST_FULL, 5
.equ ST_EXPIRED, 6
.equ ST_ACKED, 7
.equ ST_WINDOW, 8
.equ OP_GET, 1
.equ OP_PUT, 2
.equ OP_INCR, 3
.equ OP_APPEND, 4
.equ OP_OPEN, 5
.equ OP_CLOSE, 6

.data
.align 4
rx:       .space BUF_SIZE
tx:       .space BUF_SIZE
p_key:    .word 0
p_klen:   .word 0
p_val:    .word 0
p_vlen:   .word 0
p_ent:    .word 0        ; window entry that remembers this answer (0: none, a session-less get)
clock:    .word 0        ; logical clock: one tick per session use (LRU order)
applied:  .word 0        ; requests executed (not replayed)
replayed: .word 0        ; retries answered from a session window
opened:   .word 0        ; sessions opened
expired:  .word 0        ; sessions expired to make room (LRU)
numbuf:   .space 16
.align 4096
; KV slot: +0 klen+1 (0 = empty), +4 key[60], +64 vlen, +68 value[188]
kvtab:    .space KV_SLOTS * 256
sesstab:  .space SESS_MAX * SESS_HDR
wintab:   .space SESS_MAX * SESS_WIN * ENT_SIZE

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
    blt r12, 5, h_bad
    ldb r2, [rx + 4]            ; op
    beq r2, OP_OPEN, h_open
    blt r12, 12, h_bad
    ldw r1, [rx + 8]            ; session id
    beq r2, OP_CLOSE, h_close
    blt r2, OP_GET, h_bad
    bgt r2, OP_APPEND, h_bad
    blt r12, HDR_LEN + 3, h_bad ; header, klen, vlen
    ldb r9, [rx + HDR_LEN]      ; klen
    add r10, r9, HDR_LEN + 1    ; offset of vlen
    add r1, r10, 2
    bgt r1, r12, h_bad
    bgt r9, MAXKEY, h_toolarge
    mov r3, rx + HDR_LEN + 1
    stw r3, [p_key]
    stw r9, [p_klen]
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
    ldw r1, [rx + 8]            ; session id
    bne r1, 0, h_session
    ldb r2, [rx + 4]
    bne r2, OP_GET, h_bad       ; only a get may come without a session (it changes nothing)
    stw r1, [p_ent]             ; nothing to remember
    jmp h_exec
h_session:
    call sess_find              ; r3 = session header, r4 = 1 found
    beq r4, 0, h_expired
    ldw r5, [rx + 12]           ; seq
    ldw r6, [rx + 16]           ; ackBelow: the client has every answer below it
    beq r5, 0, h_bad
    bltu r5, r6, h_bad          ; the client cannot have the answer to this very request
    ldw r7, [clock]
    add r7, r7, 1
    stw r7, [clock]
    stw r7, [r3 + 8]            ; the session was used now
    ldw r7, [r3 + 4]            ; ack mark
    bgeu r7, r6, hs_marked
    stw r6, [r3 + 4]            ; forget every answer below ackBelow
    mov r7, r6
hs_marked:
    bltu r5, r7, h_acked        ; acknowledged and forgotten: refuse, never apply again
    call win_entry              ; r8 = the entry for seq r5
    ldw r9, [r8]
    beq r9, r5, h_replay        ; remembered: answer again, do not apply
    sub r9, r5, r7
    bgeu r9, SESS_WIN, h_window ; too far ahead of the lowest unanswered seq
    stw r8, [p_ent]
h_exec:
    ldb r2, [rx + 4]            ; op
    beq r2, OP_GET, h_get
    beq r2, OP_PUT, h_put
    beq r2, OP_INCR, h_incr
    call do_append
    jmp h_store
h_get:
    call do_get
    jmp h_store
h_put:
    call do_put
    jmp h_store
h_incr:
    call do_incr
h_store:                        ; remember the response (r0 = its length) in the session's window
    ldw r1, [applied]
    add r1, r1, 1
    stw r1, [applied]
    ldw r3, [p_ent]
    beq r3, 0, h_send
    ldw r1, [rx + 12]
    stw r1, [r3]
    stw r0, [r3 + 4]
    add r4, r3, 8
    mov r5, tx + 4
    memcpy r4, r5, r0
    jmp h_send
h_replay:
    ldw r0, [r8 + 4]
    mov r4, tx + 4
    add r5, r8, 8
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
    jmp h_status
h_toolarge:
    mov r1, ST_TOOLARGE
    jmp h_status
h_expired:
    mov r1, ST_EXPIRED
    jmp h_status
h_acked:
    mov r1, ST_ACKED
    jmp h_status
h_window:
    mov r1, ST_WINDOW
h_status:
    call resp_status
    jmp h_send

; open a session: a free slot, else the least recently used one expires
h_open:
    mov r6, 0
    mov r11, -1                 ; oldest last-used seen (unsigned)
    mov r13, sesstab
ho_loop:
    shl r3, r6, 4
    add r3, r3, sesstab
    ldw r8, [r3]
    beq r8, 0, ho_take
    ldw r8, [r3 + 8]
    bgeu r8, r11, ho_next
    mov r11, r8
    mov r13, r3
ho_next:
    add r6, r6, 1
    blt r6, SESS_MAX, ho_loop
    mov r3, r13
    ldw r1, [expired]
    add r1, r1, 1
    stw r1, [expired]
ho_take:                        ; r3 = the slot's header
    ldw r7, [r3 + 12]
    add r7, r7, 1               ; a new generation: the slot's old ids stay invalid
    and r7, r7, 0xffffff
    bne r7, 0, ho_gen
    mov r7, 1
ho_gen:
    stw r7, [r3 + 12]
    sub r8, r3, sesstab
    shr r8, r8, 4               ; slot
    shl r7, r7, SESS_BITS
    or r7, r7, r8               ; id = generation << 8 | slot
    stw r7, [r3]
    mov r9, 1
    stw r9, [r3 + 4]            ; seq 1 is the first unanswered
    ldw r9, [clock]
    add r9, r9, 1
    stw r9, [clock]
    stw r9, [r3 + 8]
    mul r8, r8, SESS_WIN * ENT_SIZE
    add r8, r8, wintab
    mov r9, 0
    mov r10, SESS_WIN * ENT_SIZE
    memset r8, r9, r10          ; forget the previous session's answers
    ldw r1, [opened]
    add r1, r1, 1
    stw r1, [opened]
    mov r2, r7
    mov r1, tx + 7
    call format_uint
    mov r1, ST_OK
    stb r1, [tx + 4]
    stb r0, [tx + 5]
    mov r1, 0
    stb r1, [tx + 6]
    add r0, r0, 3
    jmp h_send

; close a session (r1 = id): its slot is free for the next open
h_close:
    beq r1, 0, h_expired
    call sess_find
    beq r4, 0, h_expired
    mov r1, 0
    stw r1, [r3]
    mov r1, ST_OK
    jmp h_status

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

; ---------------------------------------------------------------- sessions
; sess_find(r1 = id) → r3 = header address, r4 = 1 when the session is live
sess_find:
    and r3, r1, SESS_MAX - 1
    shl r3, r3, 4
    add r3, r3, sesstab
    mov r4, 0
    beq r1, 0, sf_ret
    ldw r8, [r3]
    bne r8, r1, sf_ret
    mov r4, 1
sf_ret:
    ret

; win_entry(r3 = header, r5 = seq) → r8 = the window entry for that seq
win_entry:
    sub r8, r3, sesstab
    shr r8, r8, 4               ; slot
    mul r8, r8, SESS_WIN
    and r9, r5, SESS_WIN - 1
    add r8, r8, r9
    mul r8, r8, ENT_SIZE
    add r8, r8, wintab
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

; format_uint(r1 = addr, r2 = value) → r0 = length of the unsigned decimal text. Keeps r3.
format_uint:
    mov r0, 0
    mov r6, r2
    jmp fi_pos

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
