// Package fuzzedit turns a fuzzer's small input into an edit of a valid
// message, so that fuzz targets of large peer messages (keys, ciphertexts,
// whole protocol transcripts) mutate and minimize fast while still
// reaching the decoders' checks past the messages' structure.
package fuzzedit

import "bytes"

// Input returns the bytes a fuzz target decodes. With raw, data is the
// message itself, of any length. Otherwise data edits base, a valid message
// (or an honest transcript): data[0], as an int8, changes its length (a cut,
// or zero bytes appended), and every 4 bytes after it XOR the byte at an
// offset (3 bytes, big-endian, modulo the length) with the fourth. base is
// not modified.
func Input(raw bool, data, base []byte) []byte {
	if raw {
		return data
	}
	p := bytes.Clone(base)
	if len(data) == 0 {
		return p
	}
	n := max(len(p)+int(int8(data[0])), 0)
	if n <= len(p) {
		p = p[:n]
	} else {
		p = append(p, make([]byte, n-len(p))...)
	}
	for rest := data[1:]; len(rest) >= 4 && len(p) > 0; rest = rest[4:] {
		off := int(rest[0])<<16 | int(rest[1])<<8 | int(rest[2])
		p[off%len(p)] ^= rest[3]
	}
	return p
}
