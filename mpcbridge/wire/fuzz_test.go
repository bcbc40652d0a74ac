package wire

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"testing"
	"unicode/utf8"
)

// The fuzz targets cover every decoder of the wire format, alone and as a
// Conn runs them on a stream of arbitrary bytes. Run one with, e.g.,
//
//	go test -run='^$' -fuzz=FuzzParseHeader -fuzztime=60s ./mpcbridge/wire/

func FuzzParseHeader(f *testing.F) {
	f.Add(frame(tA, nil))
	f.Add(frame(TypeHello, make([]byte, 30)))
	f.Add(frame(TypeTunnelEnd, []byte{1}))
	f.Add([]byte{0xf0, 0x01, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(make([]byte, HeaderLen))
	f.Add(bytes.Repeat([]byte{0xff}, HeaderLen))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHeader(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if len(b) != HeaderLen || h.typ == 0 || h.flags != 0 {
			t.Fatalf("accepted %x as %+v", b, h)
		}
		var out [HeaderLen]byte
		h.put(out[:])
		if !bytes.Equal(out[:], b) {
			t.Fatalf("re-encoded %x as %x", b, out)
		}
		for _, max := range []int{0, 1 << 10, DefaultMaxFrame} {
			err := h.checkLength(max)
			if (err == nil) != (h.length <= limitFor(h.typ, max)) || (err != nil && !errors.Is(err, ErrFrameTooLarge)) {
				t.Fatalf("checkLength(%d) of %+v: %v", max, h, err)
			}
		}
	})
}

func FuzzDecodeHello(f *testing.F) {
	for _, cfg := range []Config{testConfig(RoleClient), {Role: RoleServer}, {Role: RoleClient, Params: make([]byte, 300)}} {
		f.Add(helloFrame(cfg)[HeaderLen:])
	}
	f.Add(helloPayload(magic, 2, RoleClient, 0, 7, 1, ""))
	f.Add(helloPayload(magic, 1, 9, 1, 7, 0, "x"))
	f.Add([]byte("CPRUNE\r\n\x00\x02\x01\x00"))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Add([]byte{})
	local := hello{wireVersion: WireVersion, role: RoleServer, version: 7, maxFrame: DefaultMaxFrame, params: testConfig(RoleServer).Params}
	f.Fuzz(func(t *testing.T, p []byte) {
		h, err := decodeHello(p)
		if err != nil {
			if !errors.Is(err, ErrMagic) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("error %v has no sentinel", err)
			}
			return
		}
		if h.wireVersion == WireVersion {
			if out := h.marshal(); !bytes.Equal(out, p) {
				t.Fatalf("re-encoded %x as %x", p, out)
			}
			if h.maxFrame == 0 || len(h.params) > MaxParamsLen {
				t.Fatalf("accepted %+v", h)
			}
		}
		if m := checkHello(&local, &h); m != nil {
			if m.err == nil || m.reason == "" || cleanReason(m.reason) != m.reason {
				t.Fatalf("mismatch %+v", m)
			}
			if !errors.Is(m.err, ErrVersion) && !errors.Is(m.err, ErrRole) && !errors.Is(m.err, ErrParams) {
				t.Fatalf("mismatch error %v has no sentinel", m.err)
			}
		}
	})
}

func FuzzDecodeAbort(f *testing.F) {
	f.Add(encodeAbort(AbortParams, "session parameters differ"))
	f.Add(encodeAbort(99, ""))
	f.Add([]byte{0, 1, 0xff, 0xfe, 0x1b, '[', 'm'})
	f.Add([]byte{0})
	f.Add(append([]byte{0, 8}, bytes.Repeat([]byte("é"), 600)...))
	f.Fuzz(func(t *testing.T, p []byte) {
		ae, err := decodeAbort(p)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("error %v has no sentinel", err)
			}
			return
		}
		if !utf8.ValidString(ae.Reason) || len(ae.Reason) > MaxReasonLen {
			t.Fatalf("reason %q", ae.Reason)
		}
		for _, r := range ae.Reason {
			if r != utf8.RuneError && (r < 0x20 || r == 0x7f) {
				t.Fatalf("control character %U in reason %q", r, ae.Reason)
			}
		}
		again, err := decodeAbort(encodeAbort(ae.Code, ae.Reason))
		if err != nil || *again != *ae {
			t.Fatalf("round trip of %+v: %+v, %v", ae, again, err)
		}
		if !errors.Is(ae, ErrPeerAborted) || ae.Error() == "" {
			t.Fatalf("AbortError %+v", ae)
		}
	})
}

func FuzzUint64s(f *testing.F) {
	f.Add(le64(1, 2, 3), 3, uint16(0))
	f.Add(le64(1, 2, 3), 2, uint16(0))
	f.Add(make([]byte, 12), 10, uint16(5))
	f.Add([]byte{}, 0, uint16(0))
	f.Add(make([]byte, 1000), -1, uint16(100))
	f.Fuzz(func(t *testing.T, p []byte, maxCount int, bufExtra uint16) {
		n, err := checkUint64sLen(uint64(len(p)), maxCount, -1)
		wantErr := len(p)%8 != 0 || (maxCount >= 0 && len(p)/8 > maxCount)
		if (err != nil) != wantErr {
			t.Fatalf("checkUint64sLen(%d, %d): %d, %v", len(p), maxCount, n, err)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("error %v has no sentinel", err)
			}
			return
		}
		if n != len(p)/8 {
			t.Fatalf("count %d for %d bytes", n, len(p))
		}
		if _, err := checkUint64sLen(uint64(len(p)), -1, n+1); !errors.Is(err, ErrMalformed) {
			t.Fatalf("exact count %d accepted %d bytes", n+1, len(p))
		}
		// The streaming decoder, through a buffer of any size, against the
		// obvious one.
		newReader := func() *bufio.Reader { return bufio.NewReaderSize(bytes.NewReader(p), 16+int(bufExtra%4096)) }
		got := make([]uint64, n)
		if read, err := readUint64s(newReader(), got); err != nil || read != len(p) {
			t.Fatalf("readUint64s: %d, %v", read, err)
		}
		for i := range got {
			if want := binary.LittleEndian.Uint64(p[8*i:]); got[i] != want {
				t.Fatalf("word %d: %#x, want %#x", i, got[i], want)
			}
		}
		fast := make([]uint64, n)
		if read, err := readUint64sFast(newReader(), fast); err != nil || read != len(p) || !slices.Equal(fast, got) {
			t.Fatalf("readUint64sFast: %d, %v", read, err)
		}
		// Both encoders give back p.
		for _, write := range []func(*bufio.Writer, []uint64) error{writeUint64s, writeUint64sPortable} {
			var out bytes.Buffer
			w := bufio.NewWriterSize(&out, 16+int(bufExtra%4096))
			if err := write(w, got); err != nil || w.Flush() != nil || !bytes.Equal(out.Bytes(), p) {
				t.Fatalf("re-encoded %x as %x (%v)", p, out.Bytes(), err)
			}
		}
		// Asked for one word more, it reports the truncation and how much
		// arrived.
		for _, read := range []func(*bufio.Reader, []uint64) (int, error){readUint64s, readUint64sFast} {
			got, err := read(newReader(), make([]uint64, n+1))
			if want := io.ErrUnexpectedEOF; n == 0 {
				if err != io.EOF {
					t.Fatalf("one word from nothing: %v", err)
				}
			} else if err != want || got != len(p) {
				t.Fatalf("one word too many: %d, %v", got, err)
			}
		}
	})
}

// fuzzConfig is the configuration of the Conn the stream fuzzers feed; a
// small MaxFrame keeps allocations small.
func fuzzConfig() Config {
	cfg := testConfig(RoleServer)
	cfg.MaxFrame = 1 << 16
	return cfg
}

func FuzzHandshake(f *testing.F) {
	f.Add(helloFrame(testConfig(RoleClient)))
	f.Add(helloFrame(testConfig(RoleServer)))
	f.Add(frame(TypeAbort, encodeAbort(AbortVersion, "old")))
	f.Add(frame(TypeHello, helloPayload(magic, 2, RoleClient, 0, 7, 1, "")))
	f.Add(helloFrame(testConfig(RoleClient))[:20])
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		c, err := NewConn(&fakeConn{r: bytes.NewReader(stream)}, fuzzConfig())
		if err != nil {
			t.Fatal(err)
		}
		err = c.Handshake(context.Background())
		if err == nil && !bytes.HasPrefix(stream, helloFrame(testConfig(RoleClient))[:HeaderLen]) {
			t.Fatalf("handshake accepted %q", stream)
		}
	})
}

func FuzzRecv(f *testing.F) {
	seed := func(op byte, frames ...[]byte) []byte {
		return append([]byte{op}, bytes.Join(frames, nil)...)
	}
	f.Add(seed(0, frame(tA, []byte("hello")), frame(tB, nil)))
	f.Add(seed(1, frame(tA, le64(1, 2, 3))))
	f.Add(seed(1, frame(tA, make([]byte, 12))))
	f.Add(seed(2, frame(tA, []byte("into"))))
	f.Add(seed(3, frame(TypeTunnelData, []byte("tunnel")), frame(TypeTunnelEnd, nil), frame(tA, nil)))
	f.Add(seed(0, frame(TypeAbort, encodeAbort(AbortProtocol, "bye"))))
	f.Add(seed(0, frame(tA, []byte("cut"))[:8]))
	f.Add(seed(0, []byte{0xf0, 0x01, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}))
	hf := helloFrame(testConfig(RoleClient))
	f.Fuzz(func(t *testing.T, stream []byte) {
		if len(stream) == 0 {
			return
		}
		op, stream := stream[0], stream[1:]
		c, err := NewConn(&fakeConn{r: bytes.NewReader(append(hf[:len(hf):len(hf)], stream...))}, fuzzConfig())
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if err := c.Handshake(ctx); err != nil {
			t.Fatal(err)
		}
		var tun *Tunnel
		for i := 0; ; i++ {
			if i > len(stream) {
				t.Fatal("more messages than bytes")
			}
			switch op % 4 {
			case 0:
				_, _, err = c.RecvAny(ctx)
			case 1:
				_, err = c.RecvUint64s(ctx, tA, 100)
			case 2:
				err = c.RecvInto(ctx, tA, &sink{})
			case 3:
				if tun == nil {
					if tun, err = c.OpenTunnel(ctx); err != nil {
						t.Fatal(err)
					}
				}
				var n int
				n, err = tun.Read(make([]byte, 7))
				if err == io.EOF {
					if err = tun.Close(); err != nil {
						t.Fatal(err)
					}
					tun = nil
					_, _, err = c.RecvAny(ctx)
				} else if err == nil && n == 0 {
					t.Fatal("Read returned nothing")
				}
			}
			if err != nil {
				break
			}
			op >>= 1
		}
		if s := c.Stats(); s.BytesReceived > int64(len(hf)+len(stream)) {
			t.Fatalf("counted %d bytes received of %d", s.BytesReceived, len(hf)+len(stream))
		}
	})
}
