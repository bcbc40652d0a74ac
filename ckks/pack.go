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
//   - per-token operations (GELU, the LayerNorm polynomial, softmax on a
//     query row) act slot by slot, each token keeping its slot everywhere;
//   - X·W is a diagonal method on blocks: rotations by multiples of Block;
//   - dropping, moving or grouping tokens is a re-packing the client does when
//     it re-encrypts at a refresh (no homomorphic slot permutation).
//
// When a ciphertext holds more columns than a head (few rows, a small
// Block), HeadDim names the head dimension and several heads share each
// ciphertext of the attention's query, key and value (HeadsPerCt,
// StackedColumn); the matrices between layers keep the plain column order.
type Layout struct {
	// Rows is n, the number of token rows.
	Rows int
	// Cols is d, the number of feature columns.
	Cols int
	// Block is the number of slots per column, a power of two >= Rows.
	Block int
	// Slots is the number of slots per ciphertext (a power of two).
	Slots int
	// HeadDim is the attention head dimension the layout is for: 0 when a
	// ciphertext holds at most one head (Slots/Block <= the head dimension),
	// else a divisor of Slots/Block.
	HeadDim int
}

// BlockFor returns the block size for n tokens of a model with heads
// heads of headDim columns, in ciphertexts of slots slots: the smallest
// power of two b >= n whose c = slots/b columns per ciphertext either divide
// a head (c | headDim: a head spans headDim/c ciphertexts, head boundaries
// on ciphertext boundaries) or are whole heads (c = hp·headDim with hp |
// heads: hp heads share a ciphertext, see HeadsPerCt). So few rows give few
// full ciphertexts: after a pruning step the later layers run on fewer.
// heads <= 1 allows one head per ciphertext at most.
func BlockFor(slots, n, headDim, heads int) (int, error) {
	if n < 1 || headDim < 1 || slots < 1 {
		return 0, fmt.Errorf("cannot BlockFor: n=%d headDim=%d slots=%d", n, headDim, slots)
	}
	b := 1
	for b < n {
		b <<= 1
	}
	for ; b <= slots; b <<= 1 {
		c := slots / b
		if c <= headDim && headDim%c == 0 {
			return b, nil
		}
		if c > headDim && c%headDim == 0 && heads > 1 && heads%(c/headDim) == 0 {
			return b, nil
		}
	}
	return 0, fmt.Errorf("cannot BlockFor: %d tokens of %d heads of %d columns do not fit %d slots", n, heads, headDim, slots)
}

// HeadsPerCt returns hp, the number of heads of HeadDim columns that share
// one ciphertext of the layout (1 when a head spans one or more whole
// ciphertexts, or HeadDim is 0). With hp > 1 the attention reads the query,
// key and value ciphertexts in the stacked column order of StackedColumn.
func (l Layout) HeadsPerCt() int {
	if c := l.ColsPerCt(); l.HeadDim > 0 && c > l.HeadDim {
		return c / l.HeadDim
	}
	return 1
}

// WithHeadDim returns l for heads of headDim columns when a ciphertext holds
// more than one head, and l with HeadDim 0 otherwise (so that layouts that
// differ only in a HeadDim nothing reads compare equal).
func (l Layout) WithHeadDim(headDim int) Layout {
	l.HeadDim = 0
	if headDim > 0 && l.Block > 0 && l.Slots/l.Block > headDim {
		l.HeadDim = headDim
	}
	return l
}

// StackedColumn returns the matrix column at physical column position p
// (p = k·c + q for ciphertext k, block q) of the stacked order of hp heads
// of headDim columns per ciphertext of c = hp·headDim columns: block q =
// j·hp + h of ciphertext k holds column j of head k·hp + h. So in the
// attention's view a ciphertext has headDim column blocks of hp·Block slots
// each, and sub-block h of every column block belongs to head k·hp + h: the
// per-head score sums are sums over those column blocks, as with one head
// per ciphertext. hp = 1 is the identity.
func StackedColumn(p, headDim, hp int) int {
	if hp <= 1 {
		return p
	}
	c := hp * headDim
	k, q := p/c, p%c
	j, h := q/hp, q%hp
	return (k*hp+h)*headDim + j
}

// LayoutFor returns the layout of a rows x cols matrix of a model with heads
// heads of headDim columns: BlockFor's block, and the head dimension set
// when heads share a ciphertext.
func LayoutFor(slots, rows, cols, headDim, heads int) (Layout, error) {
	b, err := BlockFor(slots, rows, headDim, heads)
	if err != nil {
		return Layout{}, fmt.Errorf("cannot LayoutFor: %w", err)
	}
	l := Layout{Rows: rows, Cols: cols, Block: b, Slots: slots}.WithHeadDim(headDim)
	return l, l.Validate()
}

// NewLayout returns the layout of a rows x cols matrix with the given block
// size in ciphertexts of slots slots.
func NewLayout(slots, rows, cols, block int) (Layout, error) {
	l := Layout{Rows: rows, Cols: cols, Block: block, Slots: slots}
	return l, l.Validate()
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
	case l.HeadDim < 0 || (l.HeadDim > 0 && (l.Slots/l.Block <= l.HeadDim || (l.Slots/l.Block)%l.HeadDim != 0)):
		return fmt.Errorf("invalid layout: head dimension %d for %d columns per ciphertext", l.HeadDim, l.Slots/l.Block)
	}
	return nil
}

// ColsPerCt returns the number of columns a ciphertext holds.
func (l Layout) ColsPerCt() int { return l.Slots / l.Block }

// NumCts returns the number of ciphertexts of the matrix.
func (l Layout) NumCts() int { c := l.ColsPerCt(); return (l.Cols + c - 1) / c }

// WithCols returns the layout of a matrix with the same rows and blocks but
// cols columns.
func (l Layout) WithCols(cols int) Layout { l.Cols = cols; return l }

// WithRows returns the layout of a matrix with rows rows and the same block.
func (l Layout) WithRows(rows int) Layout { l.Rows = rows; return l }

// Compact returns the layout of rows of l's rows for heads heads of headDim
// columns: the smallest block BlockFor allows, never larger than l's. It is
// the layout the bridge re-packs the kept rows into after pruning, so that
// every later ciphertext holds more columns (fewer ciphertexts per matrix)
// once few tokens are left. headDim 0 keeps l's block.
func (l Layout) Compact(rows, headDim, heads int) (Layout, error) {
	if rows < 1 || rows > l.Block {
		return Layout{}, fmt.Errorf("cannot Compact: %d rows for block %d", rows, l.Block)
	}
	out := l.WithRows(rows)
	if headDim == 0 {
		return out, nil
	}
	b, err := BlockFor(l.Slots, rows, headDim, heads)
	if err != nil {
		return Layout{}, fmt.Errorf("cannot Compact: %w", err)
	}
	out.Block = min(b, l.Block)
	out = out.WithHeadDim(headDim)
	return out, out.Validate()
}

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
