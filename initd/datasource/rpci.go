package datasource

import (
	"encoding/binary"
	"fmt"
)

// The VMware backdoor: IN on port 0x5658 with magic 'VMXh' in EAX and a
// command in ECX. Command 30 (MESSAGE) carries the guest RPC channel, used
// here in its low-bandwidth form (4 bytes per call), as open-vm-tools'
// message.c documents it.
const (
	bdoorMagic   = 0x564D5868
	bdoorPort    = 0x5658
	bdoorMessage = 30

	msgOpen        = 0
	msgSendSize    = 1
	msgSendPayload = 2
	msgRecvSize    = 3
	msgRecvPayload = 4
	msgRecvStatus  = 5
	msgClose       = 6

	statusSuccess = 0x0001
	statusDoRecv  = 0x0002

	rpciProtocol = 0x49435052 // 'RPCI'
	flagCookie   = 0x80000000

	maxReply = MaxUserData * 2 // base64 of the largest user-data
)

// bdRegs are the registers in and out of one backdoor call.
type bdRegs struct{ AX, BX, CX, DX, SI, DI uint32 }

// rpciCall opens a channel, sends cmd, reads the reply and closes.
func rpciCall(bd func(*bdRegs), cmd string) (string, error) {
	call := func(sub, bx, ch, si, di uint32) bdRegs {
		r := bdRegs{AX: bdoorMagic, BX: bx, CX: bdoorMessage | sub<<16, DX: ch<<16 | bdoorPort, SI: si, DI: di}
		bd(&r)
		return r
	}
	r := call(msgOpen, rpciProtocol|flagCookie, 0, 0, 0)
	if (r.CX>>16)&statusSuccess == 0 {
		return "", fmt.Errorf("vmware rpc: open channel failed")
	}
	ch, si, di := r.DX>>16, r.SI, r.DI
	defer call(msgClose, 0, ch, si, di)

	r = call(msgSendSize, uint32(len(cmd)), ch, si, di)
	if (r.CX>>16)&statusSuccess == 0 {
		return "", fmt.Errorf("vmware rpc: send size failed")
	}
	for i := 0; i < len(cmd); i += 4 {
		var w [4]byte
		copy(w[:], cmd[i:])
		r = call(msgSendPayload, binary.LittleEndian.Uint32(w[:]), ch, si, di)
		if (r.CX>>16)&statusSuccess == 0 {
			return "", fmt.Errorf("vmware rpc: send payload failed")
		}
	}
	r = call(msgRecvSize, 0, ch, si, di)
	if (r.CX>>16)&statusSuccess == 0 {
		return "", fmt.Errorf("vmware rpc: receive size failed")
	}
	if (r.CX>>16)&statusDoRecv == 0 {
		return "", nil
	}
	if r.DX>>16 != msgSendSize {
		return "", fmt.Errorf("vmware rpc: unexpected reply type %d", r.DX>>16)
	}
	n := r.BX
	if n > maxReply {
		return "", fmt.Errorf("vmware rpc: reply of %d bytes is too large", n)
	}
	out := make([]byte, 0, n+4)
	for uint32(len(out)) < n {
		r = call(msgRecvPayload, statusSuccess, ch, si, di)
		if (r.CX>>16)&statusSuccess == 0 || r.DX>>16 != msgSendPayload {
			return "", fmt.Errorf("vmware rpc: receive payload failed")
		}
		out = binary.LittleEndian.AppendUint32(out, r.BX)
	}
	r = call(msgRecvStatus, statusSuccess, ch, si, di)
	if (r.CX>>16)&statusSuccess == 0 {
		return "", fmt.Errorf("vmware rpc: receive status failed")
	}
	return string(out[:n]), nil
}
