package datasource

import (
	"encoding/binary"
	"strings"
	"testing"
)

// fakeVMX plays the hypervisor side of the low-bandwidth RPCI channel and
// checks every call the guest makes.
type fakeVMX struct {
	keys    map[string]string
	t       *testing.T
	open    bool
	want    int
	in      []byte
	out     []byte
	outPos  int
	failure string
}

func (v *fakeVMX) fail(s string, r *bdRegs) {
	v.failure = s
	r.CX = 0 // status without success
}

func (v *fakeVMX) backdoor(r *bdRegs) {
	if r.AX != bdoorMagic || r.CX&0xffff != bdoorMessage || r.DX&0xffff != bdoorPort {
		v.fail("bad magic/command/port", r)
		return
	}
	sub := r.CX >> 16
	if sub != msgOpen && (!v.open || r.DX>>16 != 7 || r.SI != 0x1111 || r.DI != 0x2222) {
		v.fail("call on a channel that is not open, or wrong cookie", r)
		return
	}
	ok := uint32(statusSuccess) << 16
	switch sub {
	case msgOpen:
		if r.BX != rpciProtocol|flagCookie {
			v.fail("open: wrong protocol", r)
			return
		}
		v.open, v.in, v.out, v.outPos = true, nil, nil, 0
		r.CX, r.DX, r.SI, r.DI = ok, 7<<16, 0x1111, 0x2222
	case msgSendSize:
		v.want = int(r.BX)
		r.CX = ok
	case msgSendPayload:
		v.in = binary.LittleEndian.AppendUint32(v.in, r.BX)
		r.CX = ok
	case msgRecvSize:
		cmd := string(v.in[:v.want])
		reply := "0 No value found"
		if k, found := strings.CutPrefix(cmd, "info-get "); found {
			if val, ok := v.keys[k]; ok {
				reply = "1 " + val
			}
		}
		v.out = []byte(reply)
		r.CX = ok | statusDoRecv<<16
		r.BX = uint32(len(v.out))
		r.DX = msgSendSize << 16
	case msgRecvPayload:
		var w [4]byte
		copy(w[:], v.out[v.outPos:])
		v.outPos += 4
		r.BX = binary.LittleEndian.Uint32(w[:])
		r.CX = ok
		r.DX = msgSendPayload << 16
	case msgRecvStatus:
		r.CX = ok
	case msgClose:
		v.open = false
		r.CX = ok
	}
}

func TestRPCI(t *testing.T) {
	v := &fakeVMX{keys: map[string]string{"guestinfo.userdata": "hello, world: 13 bytes+"}}
	got, err := rpciCall(v.backdoor, "info-get guestinfo.userdata")
	if err != nil || got != "1 hello, world: 13 bytes+" || v.failure != "" || v.open {
		t.Errorf("got %q, %v, failure %q, open %v", got, err, v.failure, v.open)
	}
	if got, _ := rpciCall(v.backdoor, "info-get guestinfo.nope"); got != "0 No value found" {
		t.Errorf("missing key: %q", got)
	}
	// A VMX that refuses the channel (e.g. QEMU's vmport) is an error, not a hang.
	if _, err := rpciCall(func(r *bdRegs) { r.CX = 0 }, "info-get x"); err == nil {
		t.Error("refused open accepted")
	}
	// A hostile reply size is refused before allocating.
	huge := func(r *bdRegs) {
		switch r.CX >> 16 {
		case msgRecvSize:
			r.CX, r.BX, r.DX = (statusSuccess|statusDoRecv)<<16, 0xffffffff, msgSendSize<<16
		default:
			r.CX = statusSuccess << 16
		}
	}
	if _, err := rpciCall(huge, "info-get x"); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("huge reply: %v", err)
	}
}
