package iso9660

import (
	"encoding/binary"
	"fmt"
	"time"
)

const (
	blockSize  = 2048
	systemArea = 16 // blocks reserved before the volume descriptors
)

// both-endian numbers (ECMA-119 7.2.3 and 7.3.3)
func put723(b []byte, v uint16) {
	binary.LittleEndian.PutUint16(b, v)
	binary.BigEndian.PutUint16(b[2:], v)
}

func put733(b []byte, v uint32) {
	binary.LittleEndian.PutUint32(b, v)
	binary.BigEndian.PutUint32(b[4:], v)
}

// recDate is the 7-byte date of directory records and RR TF (ECMA-119 9.1.5), in UTC.
func recDate(t time.Time) [7]byte {
	return [7]byte{byte(t.Year() - 1900), byte(t.Month()), byte(t.Day()),
		byte(t.Hour()), byte(t.Minute()), byte(t.Second()), 0}
}

// vdDate is the 17-byte date of volume descriptors (ECMA-119 8.4.26.1).
func vdDate(t time.Time) []byte {
	s := fmt.Sprintf("%04d%02d%02d%02d%02d%02d00", t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second())
	return append([]byte(s), 0)
}

// noDate is "not specified" in a volume descriptor date field.
func noDate() []byte { return append([]byte("0000000000000000"), 0) }

func padSpaces(b []byte, s string) {
	n := copy(b, s)
	for i := n; i < len(b); i++ {
		b[i] = ' '
	}
}

func blocks(n int64) int64 { return (n + blockSize - 1) / blockSize }
