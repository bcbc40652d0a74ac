package wire

import (
	"fmt"
	"sync"
)

// Stats counts one end's communication. Bytes are those the Conn wrote to and
// read from its net.Conn, frame headers included; a Raw or Tunnel stream
// counts its bytes too. A round starts each time this end begins to send after
// it last received, or sends for the first time (see the package
// documentation).
type Stats struct {
	BytesSent        int64
	BytesReceived    int64
	MessagesSent     int64 // frames sent, the handshake's included
	MessagesReceived int64 // frames received
	Rounds           int64
}

// Sub returns s - t, field by field: the communication between two
// snapshots t and s taken in that order.
func (s Stats) Sub(t Stats) Stats {
	return Stats{
		BytesSent:        s.BytesSent - t.BytesSent,
		BytesReceived:    s.BytesReceived - t.BytesReceived,
		MessagesSent:     s.MessagesSent - t.MessagesSent,
		MessagesReceived: s.MessagesReceived - t.MessagesReceived,
		Rounds:           s.Rounds - t.Rounds,
	}
}

// Add returns s + t, field by field.
func (s Stats) Add(t Stats) Stats {
	return Stats{
		BytesSent:        s.BytesSent + t.BytesSent,
		BytesReceived:    s.BytesReceived + t.BytesReceived,
		MessagesSent:     s.MessagesSent + t.MessagesSent,
		MessagesReceived: s.MessagesReceived + t.MessagesReceived,
		Rounds:           s.Rounds + t.Rounds,
	}
}

// String returns a one-line summary.
func (s Stats) String() string {
	return fmt.Sprintf("sent %d B in %d msgs, received %d B in %d msgs, %d rounds",
		s.BytesSent, s.MessagesSent, s.BytesReceived, s.MessagesReceived, s.Rounds)
}

// direction is the direction of the last transfer, for counting rounds.
type direction uint8

const (
	dirNone direction = iota
	dirSend
	dirRecv
)

// counters accumulates Stats. It is safe for concurrent use.
type counters struct {
	mu   sync.Mutex
	s    Stats
	last direction
}

// startSend records that this end begins to send. Rounds are counted
// here, before the first byte goes out, rather than when the send
// completes: a concurrent receive of the peer's answer can then never be
// recorded first.
func (k *counters) startSend() {
	k.mu.Lock()
	if k.last != dirSend {
		k.s.Rounds++
		k.last = dirSend
	}
	k.mu.Unlock()
}

// sent records n bytes and msgs frames written.
func (k *counters) sent(n, msgs int64) {
	k.mu.Lock()
	k.s.BytesSent += n
	k.s.MessagesSent += msgs
	k.mu.Unlock()
}

// received records n bytes and msgs frames read.
func (k *counters) received(n, msgs int64) {
	if n == 0 && msgs == 0 {
		return
	}
	k.mu.Lock()
	k.last = dirRecv
	k.s.BytesReceived += n
	k.s.MessagesReceived += msgs
	k.mu.Unlock()
}

func (k *counters) snapshot() Stats {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.s
}
