package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/gc"
	"github.com/cipherprune/cipherprune/mpcbridge/layers"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// Message types of the engine, in the block 0x0400-0x04ff that
// mpcbridge/wire assigns to it. Every other message of a session belongs
// to the primitive that sends it (mpcbridge/README.md, the wire list).
const (
	// MsgSession (client -> server) opens a session: the padded length and
	// the reductions the client asks for (sessionRequest).
	MsgSession wire.Type = 0x0401
	// MsgAccept (server -> client) accepts it: what the server applies,
	// and the public trace of its model the client needs (sessionAccept).
	MsgAccept wire.Type = 0x0402
	// MsgPublicKey and MsgRelinKey (client -> server) carry the client's
	// CKKS public key and its seeded relinearization key, MsgProductKey
	// and MsgSharedKey its public keys of the products' rings (Lattigo's
	// binary forms).
	MsgPublicKey  wire.Type = 0x0403
	MsgRelinKey   wire.Type = 0x0404
	MsgProductKey wire.Type = 0x0405
	MsgSharedKey  wire.Type = 0x0406
	// MsgReport (server -> client) carries the server's timings
	// (serverReport): public, like the counts.
	MsgReport wire.Type = 0x0409
	// MsgClose (client -> server) ends a session after its last inference,
	// in the place of the next MsgSession: one byte, msgVersion. The server
	// takes it as the normal end.
	MsgClose wire.Type = 0x040a
)

func init() {
	wire.RegisterType(MsgSession, "engine.Session")
	wire.RegisterType(MsgAccept, "engine.Accept")
	wire.RegisterType(MsgPublicKey, "engine.PublicKey")
	wire.RegisterType(MsgRelinKey, "engine.RelinKey")
	wire.RegisterType(MsgProductKey, "engine.ProductKey")
	wire.RegisterType(MsgSharedKey, "engine.SharedKey")
	wire.RegisterType(MsgReport, "engine.Report")
	wire.RegisterType(MsgClose, "engine.Close")
}

// ErrMalformed means a message does not have the form this package sends.
var ErrMalformed = errors.New("engine: malformed message")

// msgVersion is the version byte every engine message starts with.
const msgVersion = 1

// Flags of a session request. Bit 2 (keep the first block) belonged to
// the rotation-based path of protocol version 7.
const (
	flagPrune      = 1 << 0
	flagReduce     = 1 << 1
	flagLabelOnly  = 1 << 3
	flagHideLength = 1 << 4
	flagsKnown     = flagPrune | flagReduce | flagLabelOnly | flagHideLength
)

// MaxHideLength is the largest ClientConfig.HideLength: the largest number
// of rows one garbled comparison holds.
const MaxHideLength = gc.MaxBucket

// maxLength bounds the padded length of a request, before the server checks
// it against its model.
const maxLength = 1 << 16

// sessionRequest is the payload of MsgSession:
//
//	offset  size  field
//	0       1     version (msgVersion)
//	1       1     flags: bit 0 pruning, bit 1 degree reduction, bit 3 open
//	              only the label (no logits), bit 4 round the kept counts
//	              up to a group (ClientConfig.HideLength)
//	2       1     with bit 4, log2 of the group (1 to log2 MaxHideLength);
//	              zero otherwise
//	3       1     reserved, zero
//	4       4     padded length n, big-endian
//
// A server older than bit 4 refuses a request with it as malformed, and the
// client reads the reason; without it the request is the same bytes as
// before.
type sessionRequest struct {
	length     int
	prune      bool
	reduce     bool
	labelOnly  bool
	hideLength int // the group, a power of two; 0: counts not rounded
}

const sessionRequestSize = 8

// sameOptions reports whether r and o ask for the same options: only the
// padded length may differ between the requests of one session.
func (r sessionRequest) sameOptions(o sessionRequest) bool {
	r.length, o.length = 0, 0
	return r == o
}

func (r sessionRequest) marshal() []byte {
	p := make([]byte, sessionRequestSize)
	p[0] = msgVersion
	if r.prune {
		p[1] |= flagPrune
	}
	if r.reduce {
		p[1] |= flagReduce
	}
	if r.labelOnly {
		p[1] |= flagLabelOnly
	}
	if r.hideLength > 0 {
		p[1] |= flagHideLength
		p[2] = byte(bits.Len(uint(r.hideLength)) - 1)
	}
	binary.BigEndian.PutUint32(p[4:], uint32(r.length))
	return p
}

func decodeSessionRequest(p []byte) (sessionRequest, error) {
	if len(p) != sessionRequestSize {
		return sessionRequest{}, fmt.Errorf("%w: session request of %d bytes, want %d", ErrMalformed, len(p), sessionRequestSize)
	}
	if p[0] != msgVersion {
		return sessionRequest{}, fmt.Errorf("%w: session request version %d, want %d", ErrMalformed, p[0], msgVersion)
	}
	if p[1]&^flagsKnown != 0 || p[3] != 0 || (p[1]&flagHideLength == 0) != (p[2] == 0) {
		return sessionRequest{}, fmt.Errorf("%w: session request flags %#02x, group %#02x, reserved %#02x", ErrMalformed, p[1], p[2], p[3])
	}
	hide := 0
	if p[2] != 0 {
		if int(p[2]) >= bits.Len(MaxHideLength) {
			return sessionRequest{}, fmt.Errorf("%w: hide-length group 2^%d above %d", ErrMalformed, p[2], MaxHideLength)
		}
		hide = 1 << p[2]
	}
	n := binary.BigEndian.Uint32(p[4:])
	if n < 1 || n > maxLength {
		return sessionRequest{}, fmt.Errorf("%w: padded length %d not in [1, %d]", ErrMalformed, n, maxLength)
	}
	return sessionRequest{length: int(n), prune: p[1]&flagPrune != 0, reduce: p[1]&flagReduce != 0,
		labelOnly: p[1]&flagLabelOnly != 0, hideLength: hide}, nil
}

// sessionAccept is the payload of MsgAccept:
//
//	offset  size  field
//	0       8     the request as the server applies it (sessionRequest)
//	8       1     LogBoundOut of the products by weights (modelLogBoundOut)
//	9       1     the bound of the softmax's exponentials (SumsLogBound)
//	10      2     reserved, zero
//	12      10    the level of each polynomial's input, per function and
//	              degree (approx.Funcs by approx.Degrees)
//	22      1     the functions whose two degrees are one recipe, bit i
//	              for approx.Funcs()[i] (layers' OneRecipe)
//	23      2     number L of layers
//	25      ⌈L/8⌉ the layers that run a pruning step, bit l%8 of byte l/8
//
// The bounds and levels are what a client needs of the server's model and
// approximations, whose intervals and weights stay secret; which layers
// prune is public (their counts are revealed), the thresholds are not.
type sessionAccept struct {
	request                   sessionRequest
	logBoundOut, sumsLogBound int
	levels                    layers.PolyLevels
	oneRecipe                 []approx.Func
	prunes                    []bool
	// allRowsLast says the model's last layer computes every row, not the
	// CLS row alone: the server's model is the first layers of a deeper
	// one (ServerConfig.AllRowsLastLayer). Byte 10, 0 or 1.
	allRowsLast bool
}

// sameSession reports whether a and b announce the same parameters,
// options and pruning layers: only the padded length may differ between
// the answers of one session.
func (a sessionAccept) sameSession(b sessionAccept) bool {
	a.request.length, b.request.length = 0, 0
	return bytes.Equal(a.marshal(), b.marshal())
}

// acceptFixed is the size of MsgAccept before the layers' bits.
var acceptFixed = 12 + polyLevelsBytes + 3

func (a sessionAccept) marshal() []byte {
	p := make([]byte, 12, acceptFixed+(len(a.prunes)+7)/8)
	copy(p, a.request.marshal())
	p[8], p[9] = byte(a.logBoundOut), byte(a.sumsLogBound)
	if a.allRowsLast {
		p[10] = 1
	}
	p = append(p, encodeLevels(a.levels)...)
	var one byte
	for i, fn := range approx.Funcs() {
		if slices.Contains(a.oneRecipe, fn) {
			one |= 1 << i
		}
	}
	p = append(p, one)
	p = binary.BigEndian.AppendUint16(p, uint16(len(a.prunes)))
	bitsOut := make([]byte, (len(a.prunes)+7)/8)
	for l, v := range a.prunes {
		if v {
			bitsOut[l/8] |= 1 << (l % 8)
		}
	}
	return append(p, bitsOut...)
}

func decodeSessionAccept(p []byte) (sessionAccept, error) {
	if len(p) < acceptFixed {
		return sessionAccept{}, fmt.Errorf("%w: accept of %d bytes", ErrMalformed, len(p))
	}
	nl := int(binary.BigEndian.Uint16(p[acceptFixed-2:]))
	if nl > maxReportLayers || len(p) != acceptFixed+(nl+7)/8 {
		return sessionAccept{}, fmt.Errorf("%w: accept of %d layers in %d bytes", ErrMalformed, nl, len(p))
	}
	prunes := make([]bool, nl)
	for l := range prunes {
		prunes[l] = p[acceptFixed+l/8]&(1<<(l%8)) != 0
	}
	if nl%8 != 0 && p[len(p)-1]>>(nl%8) != 0 {
		return sessionAccept{}, fmt.Errorf("%w: accept with bits beyond its %d layers", ErrMalformed, nl)
	}
	req, err := decodeSessionRequest(p[:sessionRequestSize])
	if err != nil {
		return sessionAccept{}, err
	}
	if p[10] > 1 || p[11] != 0 || p[8] > 60 || p[9] < 1 || p[9] > 30 {
		return sessionAccept{}, fmt.Errorf("%w: accept bounds %d, %d, last-layer flag %d, reserved %#02x", ErrMalformed, p[8], p[9], p[10], p[11])
	}
	lv, err := decodeLevels(p[12 : acceptFixed-3])
	if err != nil {
		return sessionAccept{}, err
	}
	one := p[acceptFixed-3]
	if one>>len(approx.Funcs()) != 0 {
		return sessionAccept{}, fmt.Errorf("%w: one-recipe bits %#02x", ErrMalformed, one)
	}
	var oneRecipe []approx.Func
	for i, fn := range approx.Funcs() {
		if one&(1<<i) != 0 {
			oneRecipe = append(oneRecipe, fn)
		}
	}
	return sessionAccept{request: req, logBoundOut: int(p[8]), sumsLogBound: int(p[9]), levels: lv, oneRecipe: oneRecipe, prunes: prunes, allRowsLast: p[10] == 1}, nil
}

// closeMessage returns the payload of MsgClose.
func closeMessage() []byte { return []byte{msgVersion} }

func decodeClose(p []byte) error {
	if len(p) != 1 || p[0] != msgVersion {
		return fmt.Errorf("%w: close message of %d bytes, want the version byte %d alone", ErrMalformed, len(p), msgVersion)
	}
	return nil
}

// maxReportLayers bounds the layers of a report.
const maxReportLayers = 1 << 10

// serverReport is the payload of MsgReport, the server's side of the
// Report: per layer, the seconds the server spent in the layer and, of
// those, in its pruning step; then the head's seconds.
//
//	offset  size  field
//	0       1     version (msgVersion)
//	1       3     reserved, zero
//	4       4     number L of layers
//	8       16·L  per layer: seconds, step seconds (float64 bits)
//	...     8     head seconds
type serverReport struct {
	layers []serverLayer
	head   float64
}

type serverLayer struct {
	seconds, step float64
}

func (r serverReport) marshal() []byte {
	p := make([]byte, 8+16*len(r.layers)+8)
	p[0] = msgVersion
	be := binary.BigEndian
	be.PutUint32(p[4:], uint32(len(r.layers)))
	for i, l := range r.layers {
		o := 8 + 16*i
		be.PutUint64(p[o:], math.Float64bits(l.seconds))
		be.PutUint64(p[o+8:], math.Float64bits(l.step))
	}
	be.PutUint64(p[len(p)-8:], math.Float64bits(r.head))
	return p
}

func decodeServerReport(p []byte) (serverReport, error) {
	if len(p) < 16 || p[0] != msgVersion || p[1] != 0 || p[2] != 0 || p[3] != 0 {
		return serverReport{}, fmt.Errorf("%w: report header", ErrMalformed)
	}
	be := binary.BigEndian
	n := be.Uint32(p[4:])
	if n > maxReportLayers || len(p) != 16+16*int(n) {
		return serverReport{}, fmt.Errorf("%w: report of %d layers in %d bytes", ErrMalformed, n, len(p))
	}
	seconds := func(o int) (float64, error) {
		v := math.Float64frombits(be.Uint64(p[o:]))
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return 0, fmt.Errorf("%w: report time %v", ErrMalformed, v)
		}
		return v, nil
	}
	r := serverReport{layers: make([]serverLayer, n)}
	for i := range r.layers {
		o := 8 + 16*i
		var err error
		if r.layers[i].seconds, err = seconds(o); err != nil {
			return serverReport{}, err
		}
		if r.layers[i].step, err = seconds(o + 8); err != nil {
			return serverReport{}, err
		}
	}
	var err error
	if r.head, err = seconds(len(p) - 8); err != nil {
		return serverReport{}, err
	}
	return r, nil
}
