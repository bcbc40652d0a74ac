package matmul

import (
	"fmt"
	"io"

	"github.com/cipherprune/cipherprune/internal/xof"
	"github.com/cipherprune/cipherprune/mpcbridge/internal/mask"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// ih3J bounds w²·J for the sum of three independent integers uniform on w
// consecutive values (mask.IH3J; TestIH3Constant computes it): the masks
// have w >= 2^50.
const ih3J = mask.IH3J

// maskSampler draws masks M = U1 + U2 + U3 with the U_i independent and
// uniform in [-2^β, 2^β) (β <= 123), from an AES-256-CTR stream
// (mpcbridge/internal/mask, shared with mpcbridge/share).
type maskSampler = mask.Sampler[share.Int128]

func newMaskSampler(rnd io.Reader, bits int) (*maskSampler, error) {
	return mask.NewSampler[share.Int128](rnd, bits)
}

// stream returns an AES-256-CTR stream keyed by 32 fresh bytes of rnd.
func stream(rnd io.Reader) (*xof.Stream, error) {
	var seed [xof.SeedSize]byte
	if _, err := io.ReadFull(rnd, seed[:]); err != nil {
		return nil, fmt.Errorf("cannot draw a seed: %w", err)
	}
	return xof.New(seed[:])
}

// budget counts the outputs a Server has masked in its session.
type budget struct {
	used, limit int64
}

// take reserves n more outputs, or fails without reserving.
func (b *budget) take(n int) error {
	if int64(n) > b.limit-b.used {
		return fmt.Errorf("%d more outputs would exceed the session's %d masked outputs (%d used): the masks' statistical bound covers no more; start a new session", n, b.limit, b.used)
	}
	b.used += int64(n)
	return nil
}
