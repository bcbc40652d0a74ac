package share

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/tuneinsight/lattigo/v5/ring"
)

// Message types of this package, in the block 0x0100-0x01ff that
// mpcbridge/wire assigns to mpcbridge/share (0x02xx is the shuffle's). Every
// payload starts with the same 10-byte header:
// version (1 byte), log2 of the ring degree (1), the parameter fingerprint
// (4, FNV-1a of the ring degree, type and moduli), the ciphertext count (4).
const (
	// MsgEncToShares (server -> client) carries masked ciphertexts that the
	// client decrypts and decodes into its slot shares (EncToShares).
	MsgEncToShares uint16 = 0x0101
	// MsgSharesToEnc (client -> server) carries seeded encryptions of the
	// client's shares (SharesToEnc).
	MsgSharesToEnc uint16 = 0x0102
	// 0x0103 and 0x0104 were the removed refresh's request and response
	// (docs/results.md has the slot-rotation path's figures).
)

const (
	// msgVersion 2: the (since removed) refresh request named the level of
	// its answer; the messages that remain are unchanged.
	msgVersion = 2
	headerSize = 1 + 1 + 4 + 4
	// maskedHead is level, log slots, flags, mask width, scale (float64
	// bits).
	maskedHead = 1 + 1 + 1 + 1 + 8
	// seedSize is the size of the seed of a seeded ciphertext.
	seedSize = 32
	// seededHead is level, log slots, scale, seed.
	seededHead = 1 + 1 + 8 + seedSize
	// flagBatched marks a slot-encoded (IsBatched) ciphertext.
	flagBatched = 1
)

// maskedCt is a masked, re-randomized ciphertext at its mask level, as the
// server sends it (NTT domain, degree 1).
type maskedCt struct {
	level, logSlots int
	batched         bool
	maskBits        int
	scale           float64
	c0, c1          ring.Poly
}

// seededCt is a secret-key encryption whose c1 is expanded from seed (NTT
// domain).
type seededCt struct {
	level, logSlots int
	scale           float64
	seed            [seedSize]byte
	c0              ring.Poly
}

func (ri *ringInfo) appendHeader(dst []byte, count int) []byte {
	dst = append(dst, msgVersion, byte(ri.logN))
	dst = binary.LittleEndian.AppendUint32(dst, ri.id)
	return binary.LittleEndian.AppendUint32(dst, uint32(count))
}

// readHeader checks the header and returns the count and the rest.
func (ri *ringInfo) readHeader(payload []byte, maxCount int) (int, []byte, error) {
	if len(payload) < headerSize {
		return 0, nil, fmt.Errorf("message of %d bytes is shorter than its %d-byte header", len(payload), headerSize)
	}
	if v := payload[0]; v != msgVersion {
		return 0, nil, fmt.Errorf("message version %d, want %d", v, msgVersion)
	}
	if logN := int(payload[1]); logN != ri.logN {
		return 0, nil, fmt.Errorf("message for ring degree 2^%d, want 2^%d", logN, ri.logN)
	}
	if id := binary.LittleEndian.Uint32(payload[2:]); id != ri.id {
		return 0, nil, fmt.Errorf("message for other parameters (fingerprint %08x, want %08x)", id, ri.id)
	}
	count := binary.LittleEndian.Uint32(payload[6:])
	if count > uint32(maxCount) {
		return 0, nil, fmt.Errorf("message holds %d ciphertexts, more than the limit %d", count, maxCount)
	}
	return int(count), payload[headerSize:], nil
}

func (ri *ringInfo) checkMeta(level, logSlots int, scale float64) error {
	if level > ri.maxLvl {
		return fmt.Errorf("level %d above the maximum %d", level, ri.maxLvl)
	}
	if logSlots > ri.logMaxSlots {
		return fmt.Errorf("log slots %d above the maximum %d", logSlots, ri.logMaxSlots)
	}
	if math.IsNaN(scale) || math.IsInf(scale, 0) || scale < 1 {
		return fmt.Errorf("scale %v is not finite and >= 1", scale)
	}
	return nil
}

// maskedSize returns the encoded size of cts.
func (ri *ringInfo) maskedSize(cts []maskedCt) int {
	n := headerSize
	for i := range cts {
		n += maskedHead + 2*ri.polyBytes(cts[i].level)
	}
	return n
}

// encodeMasked encodes a batch of masked ciphertexts.
func (ri *ringInfo) encodeMasked(cts []maskedCt) []byte {
	buf := make([]byte, 0, ri.maskedSize(cts))
	buf = ri.appendHeader(buf, len(cts))
	for i := range cts {
		ct := &cts[i]
		var flags byte
		if ct.batched {
			flags |= flagBatched
		}
		buf = append(buf, byte(ct.level), byte(ct.logSlots), flags, byte(ct.maskBits))
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(ct.scale))
		buf = ri.appendPoly(buf, ct.level, ct.c0)
		buf = ri.appendPoly(buf, ct.level, ct.c1)
	}
	return buf
}

// decodeMasked decodes and checks a batch of masked ciphertexts.
func (ri *ringInfo) decodeMasked(payload []byte, maxCount int) ([]maskedCt, error) {
	count, rest, err := ri.readHeader(payload, maxCount)
	if err != nil {
		return nil, err
	}
	// The smallest possible ciphertext bounds the count by the length, so
	// nothing is allocated for a count the payload cannot hold.
	if min := maskedHead + 2*ri.polyBytes(0); count > len(rest)/min {
		return nil, fmt.Errorf("message of %d bytes cannot hold %d ciphertexts", len(payload), count)
	}
	cts := make([]maskedCt, count)
	for i := range cts {
		if len(rest) < maskedHead {
			return nil, fmt.Errorf("ciphertext %d: truncated header", i)
		}
		ct := &cts[i]
		ct.level, ct.logSlots = int(rest[0]), int(rest[1])
		flags := rest[2]
		ct.maskBits = int(rest[3])
		ct.scale = math.Float64frombits(binary.LittleEndian.Uint64(rest[4:]))
		rest = rest[maskedHead:]
		if flags&^flagBatched != 0 {
			return nil, fmt.Errorf("ciphertext %d: unknown flags %#x", i, flags)
		}
		ct.batched = flags&flagBatched != 0
		if err := ri.checkMeta(ct.level, ct.logSlots, ct.scale); err != nil {
			return nil, fmt.Errorf("ciphertext %d: %w", i, err)
		}
		pb := ri.polyBytes(ct.level)
		if len(rest) < 2*pb {
			return nil, fmt.Errorf("ciphertext %d: truncated: %d bytes left, want %d", i, len(rest), 2*pb)
		}
		ct.c0 = ring.NewPoly(ri.n, ct.level)
		ct.c1 = ring.NewPoly(ri.n, ct.level)
		if err := ri.readPoly(rest[:pb], ct.level, ct.c0); err != nil {
			return nil, fmt.Errorf("ciphertext %d: c0: %w", i, err)
		}
		if err := ri.readPoly(rest[pb:2*pb], ct.level, ct.c1); err != nil {
			return nil, fmt.Errorf("ciphertext %d: c1: %w", i, err)
		}
		rest = rest[2*pb:]
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%d trailing bytes after %d ciphertexts", len(rest), count)
	}
	return cts, nil
}

// seededSize returns the encoded size of cts.
func (ri *ringInfo) seededSize(cts []seededCt) int {
	n := headerSize
	for i := range cts {
		n += seededHead + ri.polyBytes(cts[i].level)
	}
	return n
}

// encodeSeeded encodes a batch of seeded ciphertexts.
func (ri *ringInfo) encodeSeeded(cts []seededCt) []byte {
	buf := make([]byte, 0, ri.seededSize(cts))
	buf = ri.appendHeader(buf, len(cts))
	for i := range cts {
		ct := &cts[i]
		buf = append(buf, byte(ct.level), byte(ct.logSlots))
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(ct.scale))
		buf = append(buf, ct.seed[:]...)
		buf = ri.appendPoly(buf, ct.level, ct.c0)
	}
	return buf
}

// decodeSeeded decodes and checks a batch of seeded ciphertexts.
func (ri *ringInfo) decodeSeeded(payload []byte, maxCount int) ([]seededCt, error) {
	count, rest, err := ri.readHeader(payload, maxCount)
	if err != nil {
		return nil, err
	}
	if min := seededHead + ri.polyBytes(0); count > len(rest)/min {
		return nil, fmt.Errorf("message of %d bytes cannot hold %d ciphertexts", len(payload), count)
	}
	cts := make([]seededCt, count)
	for i := range cts {
		if len(rest) < seededHead {
			return nil, fmt.Errorf("ciphertext %d: truncated header", i)
		}
		ct := &cts[i]
		ct.level, ct.logSlots = int(rest[0]), int(rest[1])
		ct.scale = math.Float64frombits(binary.LittleEndian.Uint64(rest[2:]))
		copy(ct.seed[:], rest[10:10+seedSize])
		rest = rest[seededHead:]
		if err := ri.checkMeta(ct.level, ct.logSlots, ct.scale); err != nil {
			return nil, fmt.Errorf("ciphertext %d: %w", i, err)
		}
		pb := ri.polyBytes(ct.level)
		if len(rest) < pb {
			return nil, fmt.Errorf("ciphertext %d: truncated: %d bytes left, want %d", i, len(rest), pb)
		}
		ct.c0 = ring.NewPoly(ri.n, ct.level)
		if err := ri.readPoly(rest[:pb], ct.level, ct.c0); err != nil {
			return nil, fmt.Errorf("ciphertext %d: c0: %w", i, err)
		}
		rest = rest[pb:]
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%d trailing bytes after %d ciphertexts", len(rest), count)
	}
	return cts, nil
}
