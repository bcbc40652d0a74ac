package nettest

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestPair sends a message each way over both transports and checks that
// the ends are closed once the subtest has ended.
func TestPair(t *testing.T) {
	for _, transport := range []string{"pipe", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			var a, b io.ReadWriteCloser
			t.Run("exchange", func(t *testing.T) {
				a, b = Pair(t, transport)
				for _, ends := range [][2]io.ReadWriter{{a, b}, {b, a}} {
					from, to := ends[0], ends[1]
					msg := []byte("hello " + transport)
					got := make([]byte, len(msg))
					werr, rerr := Both(func() error {
						_, err := from.Write(msg)
						return err
					}, func() error {
						_, err := io.ReadFull(to, got)
						return err
					})
					if werr != nil || rerr != nil {
						t.Fatalf("write: %v; read: %v", werr, rerr)
					}
					if string(got) != string(msg) {
						t.Fatalf("read %q, want %q", got, msg)
					}
				}
			})
			for i, c := range []io.ReadWriteCloser{a, b} {
				if _, err := c.Write([]byte{1}); err == nil {
					t.Errorf("end %d still open after the test", i)
				}
			}
		})
	}
}

// fatalTB records the first Fatal and ends the goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestPairUnknownTransport(t *testing.T) {
	tb := &fatalTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Pair(tb, "udp")
		t.Error("Pair returned for an unknown transport")
	}()
	<-done
	if !strings.Contains(tb.msg, `unknown transport "udp"`) {
		t.Errorf("Fatalf message %q", tb.msg)
	}
}

// TestBoth checks that the functions run concurrently (each waits for the
// other) and that their errors come back in order.
func TestBoth(t *testing.T) {
	ef, eg := errors.New("f"), errors.New("g")
	fStarted, gStarted := make(chan struct{}), make(chan struct{})
	ferr, gerr := Both(func() error {
		close(fStarted)
		<-gStarted
		return ef
	}, func() error {
		close(gStarted)
		<-fStarted
		return eg
	})
	if ferr != ef || gerr != eg {
		t.Fatalf("Both = %v, %v; want f, g", ferr, gerr)
	}
	if ferr, gerr = Both(func() error { return nil }, func() error { return nil }); ferr != nil || gerr != nil {
		t.Fatalf("Both = %v, %v; want nil, nil", ferr, gerr)
	}
}
