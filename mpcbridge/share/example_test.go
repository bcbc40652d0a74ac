package share_test

import (
	"context"
	"fmt"
	"log"
	"math"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// message is one frame of chanConn.
type message struct {
	typ     uint16
	payload []byte
}

// chanConn is an in-memory share.Conn: a pair of channels.
type chanConn struct {
	in  <-chan message
	out chan<- message
}

func (c chanConn) Send(ctx context.Context, typ uint16, payload []byte) error {
	select {
	case c.out <- message{typ, payload}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c chanConn) Recv(ctx context.Context, typ uint16) ([]byte, error) {
	select {
	case m := <-c.in:
		if m.typ != typ {
			return nil, fmt.Errorf("message type %#x, want %#x", m.typ, typ)
		}
		return m.payload, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func Example() {
	ctx := context.Background()
	preset, err := ckks.PresetByName(ckks.InsecureTest11, true) // tests only: use Interactive14
	if err != nil {
		log.Fatal(err)
	}
	params, err := preset.Params()
	if err != nil {
		log.Fatal(err)
	}
	p, err := share.NewParameters(share.ParametersLiteral{LogBound: 4, FracBits: 20})
	if err != nil {
		log.Fatal(err)
	}

	// The client owns the key; the server gets only the public key.
	sk, pk := rlwe.NewKeyGenerator(params).GenKeyPairNew()
	client, err := share.NewClient(params, sk, p, nil)
	if err != nil {
		log.Fatal(err)
	}
	server, err := share.NewServer(params, pk, p, nil)
	if err != nil {
		log.Fatal(err)
	}
	toClient, toServer := make(chan message, 1), make(chan message, 1)
	serverConn := chanConn{in: toServer, out: toClient}
	clientConn := chanConn{in: toClient, out: toServer}

	// A ciphertext the server computed, at level 3.
	x := make([]float64, params.MaxSlots())
	for i := range x {
		x[i] = math.Sin(float64(i)) * 10
	}
	pt := hefloat.NewPlaintext(params, 3)
	if err := hefloat.NewEncoder(params).Encode(x, pt); err != nil {
		log.Fatal(err)
	}
	ct, err := rlwe.NewEncryptor(params, pk).EncryptNew(pt)
	if err != nil {
		log.Fatal(err)
	}

	// A: HE -> shares. The client's part runs concurrently.
	done := make(chan []share.Vector)
	go func() {
		a, err := client.EncToShares(ctx, clientConn)
		if err != nil {
			log.Fatal(err)
		}
		done <- a
	}()
	b, err := server.EncToShares(ctx, serverConn, []*rlwe.Ciphertext{ct})
	if err != nil {
		log.Fatal(err)
	}
	a := <-done
	sum, err := share.Reconstruct(p, a[0], b[0])
	if err != nil {
		log.Fatal(err)
	}
	var maxErr float64
	for i := range x {
		maxErr = math.Max(maxErr, math.Abs(sum[i]-x[i]))
	}
	fmt.Println("shares reconstruct x:", maxErr < 1e-5)

	// B: shares -> HE, a fresh encryption of x at the top level.
	top := params.MaxLevel()
	errc := make(chan error)
	go func() { errc <- client.SharesToEnc(ctx, clientConn, a, top, params.DefaultScale()) }()
	fresh, err := server.SharesToEnc(ctx, serverConn, b, top, params.DefaultScale())
	if err != nil {
		log.Fatal(err)
	}
	if err := <-errc; err != nil {
		log.Fatal(err)
	}
	y := make([]float64, params.MaxSlots())
	if err := hefloat.NewEncoder(params).Decode(rlwe.NewDecryptor(params, sk).DecryptNew(fresh[0]), y); err != nil {
		log.Fatal(err)
	}
	maxErr = 0
	for i := range x {
		maxErr = math.Max(maxErr, math.Abs(y[i]-x[i]))
	}
	fmt.Println("re-encrypted at level", fresh[0].Level(), "decrypts to x:", maxErr < 1e-5)
	// Output:
	// shares reconstruct x: true
	// re-encrypted at level 10 decrypts to x: true
}
