package wire

import (
	"encoding/binary"
	"unsafe"
)

// nativeLittleEndian is whether this machine stores a uint64 in the wire
// order, so that a vector's memory is its encoding and can be written and
// read without converting it.
var nativeLittleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// wordBytes returns the memory of v as bytes. Valid on any machine; the
// bytes are v's encoding only where nativeLittleEndian holds.
func wordBytes(v []uint64) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 8*len(v))
}
