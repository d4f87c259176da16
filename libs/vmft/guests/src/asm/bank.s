; bank.s — accounts and transfers; the total never changes. At boot it reads
; its balances from disk block 0 (an input event: DMA + interrupt); a fresh
; disk (no magic) gets NACCT accounts of INITIAL each. Every applied transfer
; writes block 0 back (an output). Retried transfers with the same non-zero
; transfer id (xid) get the remembered status and are applied once.
; Polling style: interrupts stay disabled; WFI wakes on any pending line.
; Packet format: see ../bank.ts.

.equ NACCT, 16
.equ INITIAL, 1000
.equ MAGIC, 0x4b4e4142          ; "BANK"
.equ OP_TRANSFER, 1
.equ OP_QUERY, 2
.equ XIDS, 1024
.equ ST_OK, 0
.equ ST_FUNDS, 1
.equ ST_ACCOUNT, 2
.equ ST_BAD, 3

.data
.align 4
rx:         .space 256
tx:         .space 256
transfers:  .word 0
.align 512
; disk block 0 image: +0 magic, +4 count, +8 balances[NACCT]
disk0:      .space 512
xid_tab:    .space XIDS * 8     ; (xid, status)

.text
start:
    mov r1, disk0
    out PORT_DISK_ADDR, r1
    out PORT_DISK_BLOCK, 0
    out PORT_DISK_COUNT, 1
    out PORT_DISK_CMD, DISK_READ
boot_wait:
    wfi
    in r1, PORT_IRQ_PENDING
    out PORT_IRQ_PENDING, r1    ; acknowledge whatever woke us
    in r2, PORT_DISK_STATUS
    beq r2, DISK_BUSY, boot_wait
    bne r2, DISK_DONE, init
    ldw r3, [disk0]
    bne r3, MAGIC, init
    ldw r3, [disk0 + 4]
    beq r3, NACCT, serve
init:
    mov r3, MAGIC
    stw r3, [disk0]
    mov r3, NACCT
    stw r3, [disk0 + 4]
    mov r4, 0
init_loop:
    shl r5, r4, 2
    mov r6, INITIAL
    stw r6, [r5 + disk0 + 8]
    add r4, r4, 1
    blt r4, NACCT, init_loop
    call persist
serve:
    call arm_rx
loop:
    wfi
    in r1, PORT_IRQ_PENDING
    out PORT_IRQ_PENDING, r1
    and r2, r1, 1 << IRQ_NIC
    beq r2, 0, loop
    call handle
    call arm_rx
    jmp loop

arm_rx:
    mov r1, rx
    out PORT_NIC_RX_ADDR, r1
    out PORT_NIC_RX_CAP, 256
    ret

persist:
    mov r1, disk0
    out PORT_DISK_ADDR, r1
    out PORT_DISK_BLOCK, 0
    out PORT_DISK_COUNT, 1
    out PORT_DISK_CMD, DISK_WRITE
    ret

handle:
    in r12, PORT_NIC_RX_LEN
    blt r12, 4, h_ret
    ldw r1, [rx]
    stw r1, [tx]                ; tag
    mov r1, 0
    stw r1, [tx + 4]            ; status 0 + padding
    blt r12, 5, h_bad
    ldb r2, [rx + 4]
    beq r2, OP_QUERY, h_query
    bne r2, OP_TRANSFER, h_bad
    blt r12, 24, h_bad
    ldw r3, [rx + 20]           ; xid (0 = no deduplication)
    beq r3, 0, h_exec
    and r4, r3, XIDS - 1
    shl r4, r4, 3
    add r4, r4, xid_tab
    ldw r5, [r4]
    bne r5, r3, h_exec
    ldw r6, [r4 + 4]
    stb r6, [tx + 4]
    jmp h_send8
h_exec:
    ldw r7, [rx + 8]            ; from
    ldw r8, [rx + 12]           ; to
    ldw r9, [rx + 16]           ; amount
    mov r6, ST_ACCOUNT
    bgeu r7, NACCT, h_done
    bgeu r8, NACCT, h_done
    mov r6, ST_BAD
    blt r9, 0, h_done
    shl r10, r7, 2
    ldw r1, [r10 + disk0 + 8]
    mov r6, ST_FUNDS
    blt r1, r9, h_done
    sub r1, r1, r9
    stw r1, [r10 + disk0 + 8]
    shl r11, r8, 2
    ldw r2, [r11 + disk0 + 8]
    add r2, r2, r9
    stw r2, [r11 + disk0 + 8]
    ldw r1, [transfers]
    add r1, r1, 1
    stw r1, [transfers]
    call persist
    mov r6, ST_OK
h_done:
    stb r6, [tx + 4]
    beq r3, 0, h_send8
    stw r3, [r4]
    stw r6, [r4 + 4]
h_send8:
    mov r1, 8
    jmp h_send
h_query:
    mov r1, NACCT
    stw r1, [tx + 8]
    mov r2, 0
    mov r3, 0
hq_loop:
    shl r4, r3, 2
    ldw r5, [r4 + disk0 + 8]
    stw r5, [r4 + tx + 16]
    add r2, r2, r5
    add r3, r3, 1
    blt r3, NACCT, hq_loop
    stw r2, [tx + 12]
    mov r1, 16 + NACCT * 4
    jmp h_send
h_bad:
    mov r1, ST_BAD
    stb r1, [tx + 4]
    mov r1, 8
h_send:
    mov r2, tx
    out PORT_NIC_TX_ADDR, r2
    out PORT_NIC_TX_LEN, r1
h_ret:
    ret
