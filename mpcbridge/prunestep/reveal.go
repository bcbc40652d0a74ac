package prunestep

import (
	"encoding/binary"
	"fmt"

	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// MaxRevealSlots bounds the values one RevealShares opens.
const MaxRevealSlots = 1 << 12

// revealWordSize is one entry of MsgRevealShares: the slot (uint32) and the
// server's share (Int128: high then low word), big-endian.
const revealWordSize = 4 + 16

// encodeRevealShares encodes MsgRevealShares: each slot j of slots and the
// server's share v[j].
func encodeRevealShares(slots []int, v share.Vector) []byte {
	p := make([]byte, 0, len(slots)*revealWordSize)
	for _, j := range slots {
		p = binary.BigEndian.AppendUint32(p, uint32(j))
		p = binary.BigEndian.AppendUint64(p, v[j].Hi)
		p = binary.BigEndian.AppendUint64(p, v[j].Lo)
	}
	return p
}

// decodeRevealShares decodes MsgRevealShares for a request of k slots of a
// vector of maxSlots: the slots (in range and distinct) and the server's
// shares of them.
func decodeRevealShares(p []byte, k, maxSlots int) ([]int, []share.Int128, error) {
	if len(p) != k*revealWordSize {
		return nil, nil, fmt.Errorf("%w: reveal shares of %d bytes for %d slots", ErrMalformed, len(p), k)
	}
	slots := make([]int, k)
	shares := make([]share.Int128, k)
	for i := range slots {
		o := i * revealWordSize
		slots[i] = int(binary.BigEndian.Uint32(p[o:]))
		shares[i] = share.Int128{Hi: binary.BigEndian.Uint64(p[o+4:]), Lo: binary.BigEndian.Uint64(p[o+12:])}
	}
	if err := checkRevealSlots(slots, maxSlots); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return slots, shares, nil
}

// checkRevealSlots checks the slots of a reveal: 1 to MaxRevealSlots of
// them, distinct and below maxSlots.
func checkRevealSlots(slots []int, maxSlots int) error {
	if len(slots) < 1 || len(slots) > MaxRevealSlots {
		return fmt.Errorf("%d slots to reveal, want 1 to %d", len(slots), MaxRevealSlots)
	}
	seen := make(map[int]bool, len(slots))
	for _, j := range slots {
		if j < 0 || j >= maxSlots || seen[j] {
			return fmt.Errorf("slot %d out of range or repeated (%d slots)", j, maxSlots)
		}
		seen[j] = true
	}
	return nil
}
