package ckks

import (
	"errors"
	"fmt"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"

	"github.com/cipherprune/cipherprune/models"
)

// Layout is the column-block packing of an n x d activation matrix.
//
// Every ciphertext holds Slots/Block consecutive feature columns; column j
// of the matrix is a contiguous block of Block slots (Block a power of two,
// Block >= n), token i at offset i in the block, and slots n..Block-1 of the
// block are zero. So:
//
// per-token operations (Evaluator.ApplyFunc, token i at its degree) act
// slot by slot, each token keeping its slot everywhere. A flat vector of
// values is the layout with one row and Block 1 (what
// mpcbridge/elementwise evaluates).
type Layout struct {
	// Rows is n, the number of token rows.
	Rows int
	// Cols is d, the number of feature columns.
	Cols int
	// Block is the number of slots per column, a power of two >= Rows.
	Block int
	// Slots is the number of slots per ciphertext (a power of two).
	Slots int
}

// Validate checks the layout.
func (l Layout) Validate() error {
	switch {
	case l.Slots < 1 || l.Slots&(l.Slots-1) != 0:
		return fmt.Errorf("invalid layout: slots %d not a power of two", l.Slots)
	case l.Block < 1 || l.Block&(l.Block-1) != 0 || l.Block > l.Slots:
		return fmt.Errorf("invalid layout: block %d not a power of two <= %d", l.Block, l.Slots)
	case l.Rows < 1 || l.Rows > l.Block:
		return fmt.Errorf("invalid layout: %d rows do not fit block %d", l.Rows, l.Block)
	case l.Cols < 1:
		return fmt.Errorf("invalid layout: %d columns", l.Cols)
	}
	return nil
}

// ColsPerCt returns the number of columns a ciphertext holds.
func (l Layout) ColsPerCt() int { return l.Slots / l.Block }

// NumCts returns the number of ciphertexts of the matrix.
func (l Layout) NumCts() int { c := l.ColsPerCt(); return (l.Cols + c - 1) / c }

// Pack returns the slot vectors of m (NumCts vectors of Slots values).
func (l Layout) Pack(m models.Matrix) ([][]float64, error) {
	if m.Rows != l.Rows || m.Cols != l.Cols {
		return nil, fmt.Errorf("cannot Pack: matrix is %dx%d, layout %dx%d", m.Rows, m.Cols, l.Rows, l.Cols)
	}
	c := l.ColsPerCt()
	out := make([][]float64, l.NumCts())
	for k := range out {
		v := make([]float64, l.Slots)
		for p := 0; p < c; p++ {
			j := k*c + p
			if j >= l.Cols {
				break
			}
			for i := 0; i < l.Rows; i++ {
				v[p*l.Block+i] = m.Data[i*m.Cols+j]
			}
		}
		out[k] = v
	}
	return out, nil
}

// Unpack is the inverse of Pack (slots outside the matrix are ignored).
func (l Layout) Unpack(vecs [][]float64) (models.Matrix, error) {
	if len(vecs) != l.NumCts() {
		return models.Matrix{}, fmt.Errorf("cannot Unpack: %d vectors, want %d", len(vecs), l.NumCts())
	}
	c := l.ColsPerCt()
	m := models.NewMatrix(l.Rows, l.Cols)
	for k, v := range vecs {
		if len(v) < l.Slots {
			return models.Matrix{}, fmt.Errorf("cannot Unpack: vector %d has %d slots, want %d", k, len(v), l.Slots)
		}
		for p := 0; p < c; p++ {
			j := k*c + p
			if j >= l.Cols {
				break
			}
			for i := 0; i < l.Rows; i++ {
				m.Data[i*m.Cols+j] = v[p*l.Block+i]
			}
		}
	}
	return m, nil
}

// TokenVector returns a slot vector holding f(i) at offset i of every block
// for i < Rows and 0 elsewhere: a per-token constant, the same in every
// column.
func (l Layout) TokenVector(f func(i int) float64) []float64 {
	v := make([]float64, l.Slots)
	for b := 0; b < l.Slots; b += l.Block {
		for i := 0; i < l.Rows; i++ {
			v[b+i] = f(i)
		}
	}
	return v
}

// CtMatrix is an encrypted matrix in a Layout.
type CtMatrix struct {
	Layout Layout
	Cts    []*rlwe.Ciphertext
}

// Level returns the lowest level of its ciphertexts.
func (m *CtMatrix) Level() int {
	lvl := -1
	for i, ct := range m.Cts {
		if i == 0 || ct.Level() < lvl {
			lvl = ct.Level()
		}
	}
	return lvl
}

// CopyNew returns a deep copy.
func (m *CtMatrix) CopyNew() *CtMatrix {
	out := &CtMatrix{Layout: m.Layout, Cts: make([]*rlwe.Ciphertext, len(m.Cts))}
	for i, ct := range m.Cts {
		out.Cts[i] = ct.CopyNew()
	}
	return out
}

// Validate checks that m has its layout's number of ciphertexts.
func (m *CtMatrix) Validate() error {
	if m == nil {
		return errors.New("nil CtMatrix")
	}
	if err := m.Layout.Validate(); err != nil {
		return err
	}
	if len(m.Cts) != m.Layout.NumCts() {
		return fmt.Errorf("CtMatrix has %d ciphertexts, layout wants %d", len(m.Cts), m.Layout.NumCts())
	}
	for i, ct := range m.Cts {
		if ct == nil {
			return fmt.Errorf("CtMatrix ciphertext %d is nil", i)
		}
	}
	return nil
}

// Client bundles what the key holder uses to encrypt and decrypt
// activations: it is the client's side (and the test helper's).
type Client struct {
	Params hefloat.Parameters
	Enc    *hefloat.Encoder
	Encr   *rlwe.Encryptor
	Decr   *rlwe.Decryptor
}

// NewClient returns a client for params with a public-key encryptor (pk may
// be a *rlwe.PublicKey or *rlwe.SecretKey) and, if sk is not nil, a decryptor.
func NewClient(params hefloat.Parameters, pk rlwe.EncryptionKey, sk *rlwe.SecretKey) (*Client, error) {
	if pk == nil {
		return nil, errors.New("cannot NewClient: nil encryption key")
	}
	c := &Client{Params: params, Enc: hefloat.NewEncoder(params), Encr: rlwe.NewEncryptor(params, pk)}
	if sk != nil {
		c.Decr = rlwe.NewDecryptor(params, sk)
	}
	return c, nil
}

// EncryptVector encrypts one slot vector at the given level and the default
// scale.
func (c *Client) EncryptVector(v []float64, level int) (*rlwe.Ciphertext, error) {
	pt := hefloat.NewPlaintext(c.Params, level)
	if err := c.Enc.Encode(v, pt); err != nil {
		return nil, fmt.Errorf("cannot EncryptVector: %w", err)
	}
	ct, err := c.Encr.EncryptNew(pt)
	if err != nil {
		return nil, fmt.Errorf("cannot EncryptVector: %w", err)
	}
	return ct, nil
}

// DecryptVector decrypts and decodes one ciphertext.
func (c *Client) DecryptVector(ct *rlwe.Ciphertext) ([]float64, error) {
	if c.Decr == nil {
		return nil, errors.New("cannot DecryptVector: client has no secret key")
	}
	v := make([]float64, c.Params.MaxSlots())
	if err := c.Enc.Decode(c.Decr.DecryptNew(ct), v); err != nil {
		return nil, fmt.Errorf("cannot DecryptVector: %w", err)
	}
	return v, nil
}

// EncryptMatrix packs m in layout l and encrypts it at the given level.
func (c *Client) EncryptMatrix(m models.Matrix, l Layout, level int) (*CtMatrix, error) {
	vecs, err := l.Pack(m)
	if err != nil {
		return nil, fmt.Errorf("cannot EncryptMatrix: %w", err)
	}
	out := &CtMatrix{Layout: l, Cts: make([]*rlwe.Ciphertext, len(vecs))}
	for i, v := range vecs {
		if out.Cts[i], err = c.EncryptVector(v, level); err != nil {
			return nil, fmt.Errorf("cannot EncryptMatrix: %w", err)
		}
	}
	return out, nil
}

// DecryptMatrix decrypts and unpacks m.
func (c *Client) DecryptMatrix(m *CtMatrix) (models.Matrix, error) {
	if err := m.Validate(); err != nil {
		return models.Matrix{}, fmt.Errorf("cannot DecryptMatrix: %w", err)
	}
	vecs := make([][]float64, len(m.Cts))
	for i, ct := range m.Cts {
		v, err := c.DecryptVector(ct)
		if err != nil {
			return models.Matrix{}, fmt.Errorf("cannot DecryptMatrix: %w", err)
		}
		vecs[i] = v
	}
	return m.Layout.Unpack(vecs)
}
