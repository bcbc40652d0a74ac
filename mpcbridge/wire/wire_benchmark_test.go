package wire

import (
	"context"
	"fmt"
	"io"
	"testing"
)

// buffer is an io.ReaderFrom that reads a payload into a reused buffer, to
// measure the transport without the allocation Recv makes.
type buffer struct{ b []byte }

func (r *buffer) ReadFrom(src io.Reader) (int64, error) {
	n, err := io.ReadFull(src, r.b)
	return int64(n), err
}

func BenchmarkSendRecv(b *testing.B) {
	for _, tr := range transports {
		for _, size := range []int{1 << 20, 64 << 20} {
			for _, mode := range []string{"Recv", "RecvInto", "Uint64s"} {
				b.Run(fmt.Sprintf("%s/%dMiB/%s", tr.name, size>>20, mode), func(b *testing.B) {
					benchmarkSendRecv(b, tr, size, mode)
				})
			}
		}
	}
}

func benchmarkSendRecv(b *testing.B, tr transport, size int, mode string) {
	client, server := handshakePair(b, tr)
	ctx := context.Background()
	msg := make([]byte, size)
	words := make([]uint64, size/8)
	recvWords := make([]uint64, size/8) // not words: net.Pipe would copy the memory onto itself
	into := &buffer{b: make([]byte, size)}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	errc := make(chan error, 1)
	go func() {
		for range b.N {
			var err error
			switch mode {
			case "Recv":
				_, err = server.Recv(ctx, tA)
			case "RecvInto":
				err = server.RecvInto(ctx, tA, into)
			case "Uint64s":
				err = server.RecvUint64sInto(ctx, tA, recvWords)
			}
			if err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for range b.N {
		var err error
		if mode == "Uint64s" {
			err = client.SendUint64s(ctx, tA, words)
		} else {
			err = client.Send(ctx, tA, msg)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPingPong measures one round trip of a small message.
func BenchmarkPingPong(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr.name, func(b *testing.B) {
			client, server := handshakePair(b, tr)
			ctx := context.Background()
			msg := make([]byte, 64)
			b.ReportAllocs()
			b.ResetTimer()
			errc := make(chan error, 1)
			go func() {
				for range b.N {
					p, err := server.Recv(ctx, tA)
					if err == nil {
						err = server.Send(ctx, tB, p)
					}
					if err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
			for range b.N {
				if err := client.Send(ctx, tA, msg); err != nil {
					b.Fatal(err)
				}
				if _, err := client.Recv(ctx, tB); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
		})
	}
}
