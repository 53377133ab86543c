package gpt

import (
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// GUID is a GUID in its on-disk byte order: the first three fields little
// endian, the last eight bytes as written (the "mixed-endian" GPT layout).
type GUID [16]byte

// String formats g as "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" (upper case,
// as the UEFI specification and GPT tools print it).
func (g GUID) String() string {
	return fmt.Sprintf("%08X-%04X-%04X-%X-%X",
		binary.LittleEndian.Uint32(g[0:4]), binary.LittleEndian.Uint16(g[4:6]),
		binary.LittleEndian.Uint16(g[6:8]), g[8:10], g[10:16])
}

// IsZero reports whether g is all zeros (an unused entry).
func (g GUID) IsZero() bool { return g == GUID{} }

// ParseGUID parses the text form, in either case, optionally in braces.
func ParseGUID(s string) (GUID, error) {
	var g GUID
	t := strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	parts := strings.Split(t, "-")
	if len(parts) != 5 || len(parts[0]) != 8 || len(parts[1]) != 4 || len(parts[2]) != 4 || len(parts[3]) != 4 || len(parts[4]) != 12 {
		return g, fmt.Errorf("gpt: %q is not a GUID (want XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX)", s)
	}
	raw, err := hex.DecodeString(strings.Join(parts, ""))
	if err != nil {
		return g, fmt.Errorf("gpt: %q is not a GUID: %v", s, err)
	}
	return fromRFC(raw), nil
}

// MustParseGUID is ParseGUID for constants.
func MustParseGUID(s string) GUID {
	g, err := ParseGUID(s)
	if err != nil {
		panic(err)
	}
	return g
}

// fromRFC converts big-endian (RFC 4122) bytes to the on-disk order.
func fromRFC(b []byte) GUID {
	var g GUID
	g[0], g[1], g[2], g[3] = b[3], b[2], b[1], b[0]
	g[4], g[5] = b[5], b[4]
	g[6], g[7] = b[7], b[6]
	copy(g[8:], b[8:16])
	return g
}

// rfc returns g in RFC 4122 (big-endian) byte order.
func (g GUID) rfc() []byte {
	b := make([]byte, 16)
	b[0], b[1], b[2], b[3] = g[3], g[2], g[1], g[0]
	b[4], b[5] = g[5], g[4]
	b[6], b[7] = g[7], g[6]
	copy(b[8:], g[8:])
	return b
}

// kilnNamespace is the namespace of every GUID kiln derives: the RFC 4122
// version 5 GUID of the module path in the URL namespace.
var kilnNamespace = nameGUID(MustParseGUID("6BA7B811-9DAD-11D1-80B4-00C04FD430C8"), "github.com/kilnproject/kiln")

// NameGUID derives a deterministic GUID (RFC 4122 version 5: SHA-1 of the
// kiln namespace and the name) from parts, e.g. NameGUID("disk", profile) or
// NameGUID(diskGUID.String(), "partition", "ESP"). Parts are joined with NUL
// so ("ab","c") and ("a","bc") differ.
func NameGUID(parts ...string) GUID {
	return nameGUID(kilnNamespace, strings.Join(parts, "\x00"))
}

func nameGUID(ns GUID, name string) GUID {
	h := sha1.New()
	h.Write(ns.rfc())
	h.Write([]byte(name))
	b := h.Sum(nil)[:16]
	b[6] = b[6]&0x0F | 0x50 // version 5
	b[8] = b[8]&0x3F | 0x80 // RFC 4122 variant
	return fromRFC(b)
}

// Standard partition type GUIDs.
var (
	TypeESP            = MustParseGUID("C12A7328-F81F-11D2-BA4B-00A0C93EC93B") // EFI system partition
	TypeLinuxFS        = MustParseGUID("0FC63DAF-8483-4772-8E79-3D69D8477DE4") // Linux filesystem data
	TypeBIOSBoot       = MustParseGUID("21686148-6449-6E6F-744E-656564454649") // BIOS boot partition (GRUB core)
	TypeLinuxRootAMD64 = MustParseGUID("4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709") // Discoverable Partitions: root, x86-64
	TypeLinuxRootARM64 = MustParseGUID("B921B045-1DF0-41C3-AF44-4C6F280D3FAE") // Discoverable Partitions: root, arm64
)
