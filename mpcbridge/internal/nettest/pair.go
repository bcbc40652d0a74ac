package nettest

import (
	"net"
	"sync"
	"testing"
)

// Pair returns the two ends of a connection over transport: "pipe"
// (net.Pipe, synchronous and unbuffered) or "tcp" (a loopback TCP
// connection on 127.0.0.1, a listener on a free port that is closed once the
// dial is accepted). Both ends are closed when tb's test ends; closing them
// earlier is harmless. An unknown transport, or a listen, dial or accept
// that fails, fails the test at once.
func Pair(tb testing.TB, transport string) (a, b net.Conn) {
	tb.Helper()
	switch transport {
	case "pipe":
		a, b = net.Pipe()
	case "tcp":
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		defer l.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := l.Accept()
			if err != nil {
				accepted <- nil
				return
			}
			accepted <- c
		}()
		if a, err = net.Dial("tcp", l.Addr().String()); err != nil {
			tb.Fatal(err)
		}
		if b = <-accepted; b == nil {
			a.Close()
			tb.Fatal("accept failed")
		}
	default:
		tb.Fatalf("nettest.Pair: unknown transport %q (want \"pipe\" or \"tcp\")", transport)
	}
	tb.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// Both runs f on the caller's goroutine and g on another, concurrently, and
// returns their errors once both have returned: the two parties of a
// protocol, f usually the server and g the client.
func Both(f, g func() error) (ferr, gerr error) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		gerr = g()
	}()
	ferr = f()
	wg.Wait()
	return ferr, gerr
}
