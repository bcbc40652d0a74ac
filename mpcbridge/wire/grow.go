package wire

import (
	"bufio"
	"io"
)

// firstAlloc is the size of the first buffer a payload is read into. A
// receiver grows the buffer as the bytes arrive, at most doubling it each
// time it fills, instead of allocating the length the header announces: a
// header costs its sender 12 bytes, the memory behind it must cost more.
const firstAlloc = 4 << 10

// readGrowing reads n bytes from r into a buffer that starts at firstAlloc
// bytes (or n if smaller) and at most doubles each time it fills, up to n.
// The buffer it holds is thus never more than twice the bytes that arrived
// (or firstAlloc), and it allocates less than four times as much in all.
// On error it returns the bytes read so far with io.ReadFull's error:
// io.EOF if none were read, io.ErrUnexpectedEOF if some were.
func readGrowing(r io.Reader, n uint64) ([]byte, error) {
	p := make([]byte, 0, min(n, firstAlloc))
	for uint64(len(p)) < n {
		if len(p) == cap(p) {
			q := make([]byte, len(p), min(n, 2*uint64(cap(p))))
			copy(q, p)
			p = q
		}
		k, err := io.ReadFull(r, p[len(p):cap(p)])
		p = p[:len(p)+k]
		if err != nil {
			if err == io.EOF && len(p) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return p, err
		}
	}
	return p, nil
}

// readUint64sGrowing is readGrowing for a vector of n little-endian words
// (readUint64sFast). It returns the words read and the number of bytes
// consumed, which may end within a word if the payload was cut.
func readUint64sGrowing(r *bufio.Reader, n int) ([]uint64, int, error) {
	v := make([]uint64, 0, min(n, firstAlloc/8))
	read := 0
	for len(v) < n {
		if len(v) == cap(v) {
			w := make([]uint64, len(v), min(n, 2*cap(v)))
			copy(w, v)
			v = w
		}
		k, err := readUint64sFast(r, v[len(v):cap(v)])
		read += k
		v = v[:len(v)+k/8]
		if err != nil {
			if err == io.EOF && read > 0 {
				err = io.ErrUnexpectedEOF
			}
			return v, read, err
		}
	}
	return v, read, nil
}
