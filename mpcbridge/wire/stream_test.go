package wire

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tuneinsight/lattigo/v5/ring"
	"github.com/tuneinsight/lattigo/v5/utils/sampling"
)

func randomWords(n int, seed uint64) []uint64 {
	r := rand.New(rand.NewPCG(seed, 2))
	v := make([]uint64, n)
	for i := range v {
		v[i] = r.Uint64()
	}
	return v
}

func TestUint64sRoundTrip(t *testing.T) {
	for _, tr := range transports {
		for _, n := range []int{0, 1, bufSize/8 - 1, bufSize / 8, bufSize/8 + 1, 100003} {
			t.Run(fmt.Sprintf("%s/%d", tr.name, n), func(t *testing.T) {
				client, server := handshakePair(t, tr)
				ctx := testCtx(t)
				v := randomWords(n, uint64(n))
				cerr, serr := both(func() error {
					if err := client.SendUint64s(ctx, tA, v); err != nil {
						return err
					}
					return client.SendUint64s(ctx, tB, v)
				}, func() error {
					got, err := server.RecvUint64s(ctx, tA, n)
					if err != nil {
						return err
					}
					if !slices.Equal(got, v) {
						return errors.New("RecvUint64s: vector differs")
					}
					into := make([]uint64, n)
					if err := server.RecvUint64sInto(ctx, tB, into); err != nil {
						return err
					}
					if !slices.Equal(into, v) {
						return errors.New("RecvUint64sInto: vector differs")
					}
					return nil
				})
				if cerr != nil || serr != nil {
					t.Fatalf("client: %v, server: %v", cerr, serr)
				}
				if got, want := server.Stats().BytesReceived, int64(len(helloFrame(testConfig(RoleClient)))+2*(HeaderLen+8*n)); got != want {
					t.Errorf("BytesReceived %d, want %d", got, want)
				}
			})
		}
	}
}

func TestUint64sWireFormat(t *testing.T) {
	// Little-endian words, no count.
	c, p := handshakeRawPeer(t, testConfig(RoleServer))
	done := make(chan error, 1)
	go func() { done <- c.SendUint64s(testCtx(t), tA, []uint64{1, 0x0102030405060708}) }()
	got := p.readFrame(tA)
	if want := le64(1, 0x0102030405060708); !bytes.Equal(got, want) {
		t.Errorf("payload % x, want % x", got, want)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestUint64sBadLength(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload []byte
		recv    func(ctx context.Context, c *Conn) error
		target  error
		want    string
	}{
		{"not whole words", make([]byte, 12), func(ctx context.Context, c *Conn) error { _, err := c.RecvUint64s(ctx, tA, 10); return err },
			ErrMalformed, "payload of 12 bytes is not a whole number of uint64s"},
		{"over max", le64(1, 2, 3), func(ctx context.Context, c *Conn) error { _, err := c.RecvUint64s(ctx, tA, 2); return err },
			ErrFrameTooLarge, "3 uint64s, limit 2"},
		{"into short", le64(1, 2, 3), func(ctx context.Context, c *Conn) error { return c.RecvUint64sInto(ctx, tA, make([]uint64, 4)) },
			ErrMalformed, "3 uint64s, want 4"},
		{"into long", le64(1, 2, 3), func(ctx context.Context, c *Conn) error { return c.RecvUint64sInto(ctx, tA, make([]uint64, 2)) },
			ErrMalformed, "3 uint64s, want 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, p := handshakeRawPeer(t, testConfig(RoleServer))
			p.write(frame(tA, tc.payload))
			errc := make(chan error, 1)
			go func() { errc <- tc.recv(testCtx(t), c) }()
			ae := p.readAbort()
			if err := <-errc; !errors.Is(err, tc.target) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %v with %q", err, tc.target, tc.want)
			}
			if !strings.Contains(ae.Reason, tc.want) {
				t.Errorf("peer got %q", ae.Reason)
			}
		})
	}
}

func TestMessage(t *testing.T) {
	client, server := handshakePair(t, transports[1])
	ctx := testCtx(t)
	when := time.Date(2025, 4, 1, 12, 0, 0, 0, time.UTC)
	cerr, serr := both(func() error {
		if err := client.SendMessage(ctx, tA, when); err != nil {
			return err
		}
		return client.Send(ctx, tA, []byte("not a time"))
	}, func() error {
		var got time.Time
		if err := server.RecvMessage(ctx, tA, &got); err != nil {
			return err
		}
		if !got.Equal(when) {
			return fmt.Errorf("got %v", got)
		}
		// A payload that does not decode is the caller's error; the Conn
		// stays usable.
		if err := server.RecvMessage(ctx, tA, &got); err == nil || !strings.Contains(err.Error(), "cannot RecvMessage 0xf001") {
			return fmt.Errorf("bad payload: %v", err)
		}
		return server.failure()
	})
	if cerr != nil || serr != nil {
		t.Fatalf("client: %v, server: %v", cerr, serr)
	}
}

// shortReader reads only the first n bytes of what it is given.
type shortReader struct{ n int64 }

func (s shortReader) ReadFrom(r io.Reader) (int64, error) {
	return io.CopyN(io.Discard, r, s.n)
}

// failingReader reads a little, then fails as a decoder would.
type failingReader struct{}

func (failingReader) ReadFrom(r io.Reader) (int64, error) {
	n, _ := io.CopyN(io.Discard, r, 3)
	return n, errors.New("bad ciphertext level")
}

func TestSendFromRecvInto(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			client, server := handshakePair(t, tr)
			ctx := testCtx(t)
			msg := randomBytes(300000, 9)
			cerr, serr := both(func() error {
				for range 3 {
					if err := client.SendFrom(ctx, tA, int64(len(msg)), bytes.NewReader(msg)); err != nil {
						return err
					}
				}
				return client.Send(ctx, tB, []byte("after"))
			}, func() error {
				var got bytes.Buffer
				if err := server.RecvInto(ctx, tA, &got); err != nil {
					return err
				}
				if !bytes.Equal(got.Bytes(), msg) {
					return errors.New("payload differs")
				}
				if err := server.RecvInto(ctx, tA, shortReader{10}); err == nil || !strings.Contains(err.Error(), "destination read 10 of 300000 bytes") {
					return fmt.Errorf("short reader: %v", err)
				}
				if err := server.RecvInto(ctx, tA, failingReader{}); err == nil || !strings.Contains(err.Error(), "cannot decode 0xf001: bad ciphertext level") {
					return fmt.Errorf("failing reader: %v", err)
				}
				// The rest of each payload was discarded: the stream is in step.
				p, err := server.Recv(ctx, tB)
				if err == nil && string(p) != "after" {
					err = fmt.Errorf("got %q", p)
				}
				return err
			})
			if cerr != nil || serr != nil {
				t.Fatalf("client: %v, server: %v", cerr, serr)
			}
			if got, want := server.Stats().MessagesReceived, int64(5); got != want {
				t.Errorf("MessagesReceived %d, want %d", got, want)
			}
		})
	}
}

func TestSendFromWrongSize(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int64
		src  string
		want string
	}{
		{"short", 10, "12345", "source wrote 5 of the 10 bytes announced"},
		{"long", 3, "12345", "write beyond the announced size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, p := handshakeRawPeer(t, testConfig(RoleClient))
			go func() { _, _ = io.Copy(io.Discard, p.nc) }()
			err := c.SendFrom(testCtx(t), tA, tc.size, strings.NewReader(tc.src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("SendFrom: %v, want %q", err, tc.want)
			}
			// The peer holds a broken frame: the Conn is done.
			if err := c.Send(testCtx(t), tA, nil); err == nil {
				t.Error("Send after a broken SendFrom succeeded")
			}
		})
	}
	c, _ := handshakeRawPeer(t, testConfig(RoleClient))
	if err := c.SendFrom(testCtx(t), tA, -1, strings.NewReader("")); err == nil {
		t.Error("negative size accepted")
	}
}

// TestLattigoStreaming sends a Lattigo ring.Poly with SendFrom and
// receives it with RecvInto: Lattigo finds buffer.Writer and buffer.Reader
// and streams through the Conn's buffers.
func TestLattigoStreaming(t *testing.T) {
	g := ring.NewNTTFriendlyPrimesGenerator(50, 2<<12)
	primes, err := g.NextAlternatingPrimes(3)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ring.NewRing(1<<12, primes)
	if err != nil {
		t.Fatal(err)
	}
	prng, err := sampling.NewKeyedPRNG([]byte("wire test"))
	if err != nil {
		t.Fatal(err)
	}
	poly := ring.NewUniformSampler(prng, r).ReadNew()
	for _, tr := range transports[:2] {
		t.Run(tr.name, func(t *testing.T) {
			client, server := handshakePair(t, tr)
			ctx := testCtx(t)
			got := r.NewPoly()
			cerr, serr := both(func() error {
				return client.SendFrom(ctx, tA, int64(poly.BinarySize()), poly)
			}, func() error {
				return server.RecvInto(ctx, tA, &got)
			})
			if cerr != nil || serr != nil {
				t.Fatalf("client: %v, server: %v", cerr, serr)
			}
			if !got.Equal(&poly) {
				t.Fatal("polynomial differs")
			}
		})
	}
}

func TestFrameReaderWriterInterfaces(t *testing.T) {
	// The methods Lattigo's buffer.Writer and buffer.Reader use, at the
	// frame's edges.
	var out bytes.Buffer
	bw := bufio.NewWriterSize(&out, 16)
	fw := &frameWriter{w: bw, left: 5}
	if fw.Available() != 5 || cap(fw.AvailableBuffer()) != 5 {
		t.Errorf("Available %d, AvailableBuffer cap %d", fw.Available(), cap(fw.AvailableBuffer()))
	}
	if n, err := fw.Write([]byte("abcdefg")); n != 5 || !errors.Is(err, errOverflow) {
		t.Errorf("Write past size: %d, %v", n, err)
	}
	if err := fw.Flush(); err != nil || out.String() != "abcde" {
		t.Errorf("Flush: %v, %q", err, out.String())
	}

	fr := &frameReader{r: bufio.NewReaderSize(strings.NewReader("0123456789"), 16), left: 6}
	if fr.Size() != 16 {
		t.Errorf("Size %d", fr.Size())
	}
	if b, err := fr.Peek(4); err != nil || string(b) != "0123" {
		t.Errorf("Peek(4): %q, %v", b, err)
	}
	if b, err := fr.Peek(8); err != io.EOF || string(b) != "012345" {
		t.Errorf("Peek past the payload: %q, %v", b, err)
	}
	if d, err := fr.Discard(2); d != 2 || err != nil {
		t.Errorf("Discard(2): %d, %v", d, err)
	}
	if d, err := fr.Discard(9); d != 4 || err != io.EOF {
		t.Errorf("Discard past the payload: %d, %v", d, err)
	}
	if n, err := fr.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("Read at the end: %d, %v", n, err)
	}

	cut := &frameReader{r: bufio.NewReaderSize(strings.NewReader("01"), 16), left: 6}
	if _, err := cut.Peek(4); err != io.ErrUnexpectedEOF {
		t.Errorf("Peek of a truncated payload: %v", err)
	}
	if _, err := cut.Discard(1); err != io.ErrUnexpectedEOF {
		t.Errorf("after truncation: %v", err)
	}
}
