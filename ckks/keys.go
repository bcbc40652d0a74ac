package ckks

import (
	"fmt"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"
)

// GaloisElements returns the Galois elements of every rotation the server's
// plan uses for shape s (Rotations): the Galois keys the client generates
// and sends once per session.
func GaloisElements(params hefloat.Parameters, s Shape) ([]uint64, error) {
	rots, err := Rotations(s, params.MaxSlots())
	if err != nil {
		return nil, fmt.Errorf("cannot GaloisElements: %w", err)
	}
	return params.GaloisElements(rots), nil
}

// KeyReport gives the sizes the client sends for one session.
type KeyReport struct {
	// GaloisKeys is the number of Galois (rotation) keys.
	GaloisKeys int
	// GaloisKeyBytes is the size of one Galois key, GaloisBytes of all.
	GaloisKeyBytes, GaloisBytes int
	// RelinBytes is the size of the relinearization key.
	RelinBytes int
	// PublicKeyBytes is the size of the public key.
	PublicKeyBytes int
	// CiphertextBytes is the size of one fresh ciphertext at the top level.
	CiphertextBytes int
	// InputBytes is the size of the encrypted input matrix (n x d) and
	// AttentionMaskBytes of its attention masks.
	InputBytes, AttentionMaskBytes int
	// Total is everything the client sends before the first layer.
	Total int
}

// Keys measures the key and input sizes for shape s (serialized sizes of
// Lattigo's keys at the top level, no key compression).
func Keys(params hefloat.Parameters, s Shape) (KeyReport, error) {
	galEls, err := GaloisElements(params, s)
	if err != nil {
		return KeyReport{}, fmt.Errorf("cannot Keys: %w", err)
	}
	block, err := BlockFor(params.MaxSlots(), s.Rows, s.Hidden/s.Heads)
	if err != nil {
		return KeyReport{}, fmt.Errorf("cannot Keys: %w", err)
	}
	lay := Layout{Rows: s.Rows, Cols: s.Hidden, Block: block, Slots: params.MaxSlots()}
	r := KeyReport{GaloisKeys: len(galEls)}
	r.GaloisKeyBytes = rlwe.NewGaloisKey(params).BinarySize()
	r.GaloisBytes = r.GaloisKeys * r.GaloisKeyBytes
	r.RelinBytes = rlwe.NewRelinearizationKey(params).BinarySize()
	r.PublicKeyBytes = rlwe.NewPublicKey(params).BinarySize()
	r.CiphertextBytes = hefloat.NewCiphertext(params, 1, params.MaxLevel()).BinarySize()
	r.InputBytes = lay.NumCts() * r.CiphertextBytes
	r.AttentionMaskBytes = (numDense(lay) + 1) * r.CiphertextBytes
	r.Total = r.GaloisBytes + r.RelinBytes + r.PublicKeyBytes + r.InputBytes + r.AttentionMaskBytes
	return r, nil
}
