//go:build mpcinterop

// This test runs the real p2p.Conn of github.com/markkurossi/mpc, the
// garbled-circuit library the bridge uses, over a Tunnel. It needs that
// module in go.mod, so it builds only with the tag:
//
//	go test -tags mpcinterop -run TestTunnelP2P ./mpcbridge/wire/

package wire

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/markkurossi/mpc/p2p"
)

func TestTunnelP2P(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			client, server := handshakePair(t, tr)
			ctx := testCtx(t)
			run := func(c *Conn, first bool) error {
				for round := range 3 {
					tun, err := c.OpenTunnel(ctx)
					if err != nil {
						return err
					}
					pc := p2p.NewConn(tun)
					for i, n := range []int{3, 70000, 2 << 20} {
						msg := randomBytes(n, uint64(10*round+i))
						if first {
							if err := pc.SendData(msg); err != nil {
								return err
							}
							if err := pc.Flush(); err != nil {
								return err
							}
						}
						got, err := pc.ReceiveData()
						if err != nil {
							return fmt.Errorf("round %d, message %d: %w", round, i, err)
						}
						if !bytes.Equal(got, msg) {
							return fmt.Errorf("round %d, message %d differs", round, i)
						}
						if !first {
							if err := pc.SendData(got); err != nil {
								return err
							}
							if err := pc.Flush(); err != nil {
								return err
							}
						}
					}
					if err := pc.Close(); err != nil { // ends the tunnel
						return err
					}
					// A message right behind the library's last bytes.
					if first {
						if _, err := c.Recv(ctx, tA); err != nil {
							return err
						}
					} else if err := c.Send(ctx, tA, []byte("next")); err != nil {
						return err
					}
				}
				return nil
			}
			cerr, serr := both(func() error { return run(client, true) }, func() error { return run(server, false) })
			if cerr != nil || serr != nil {
				t.Fatalf("client: %v, server: %v", cerr, serr)
			}
			if cs, ss := client.Stats(), server.Stats(); cs.BytesSent != ss.BytesReceived || ss.BytesSent != cs.BytesReceived {
				t.Errorf("byte counts disagree: client %v, server %v", cs, ss)
			}
		})
	}
}
