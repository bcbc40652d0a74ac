package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeSelfSigned writes a self-signed certificate for "localhost" and its
// key as PEM files.
func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestServeInferTLS runs the serve and infer commands against each other
// over TLS on loopback (the insecure test preset, so it takes seconds) and
// checks infer's last line; an infer that does not trust the certificate
// fails.
func TestServeInferTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("a private inference")
	}
	cert, key := writeSelfSigned(t, t.TempDir())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	model := filepath.Join("..", "..", "models", "trained", "sentiment-tiny")
	insecure := []string{"--preset", "InsecureTest11", "--allow-insecure", "--model", model}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	var serveLog bytes.Buffer
	go func() {
		served <- run(ctx, append([]string{"serve", "--listen", addr, "--tls-cert", cert, "--tls-key", key}, insecure...), &serveLog, &serveLog)
	}()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	port := addr[strings.LastIndex(addr, ":"):]
	args := append([]string{"infer", "--connect", "localhost" + port, "--text", "a wonderful evening", "--text", "a dull and dreary evening", "--tls-ca", cert}, insecure...)
	var out, errOut bytes.Buffer
	var ierr error
	for try := 0; try < 50; try++ { // wait for the listener
		out.Reset()
		if ierr = run(context.Background(), args, &out, &errOut); ierr == nil || !strings.Contains(ierr.Error(), "refused") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ierr != nil {
		t.Fatalf("infer: %v\n%s\nserver: %s", ierr, errOut.String(), serveLog.String())
	}
	// Two texts, one session: the keys are sent with the first alone. By
	// default only the label is opened.
	var results, keys []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if strings.HasPrefix(l, "infer: ") {
			results = append(results, l)
		}
		if strings.HasPrefix(l, "preset ") {
			keys = append(keys, l[strings.LastIndex(l, "keys "):])
		}
	}
	if len(results) != 2 || !strings.HasPrefix(results[0], "infer: label=positive logits=hidden ") || !strings.HasPrefix(results[1], "infer: label=") {
		t.Errorf("results %q", results)
	}
	if len(keys) != 2 || keys[0] == "keys 0.0 MiB" || keys[1] != "keys 0.0 MiB" {
		t.Errorf("keys %q, want them sent with the first text alone", keys)
	}
	// This server does not allow the logits to be opened.
	out.Reset()
	if err := run(context.Background(), append(args, "--open-logits"), &out, &errOut); err == nil || !strings.Contains(err.Error(), "label only") {
		t.Errorf("infer --open-logits against a label-only server: %v, want a refusal", err)
	}
	other, _ := writeSelfSigned(t, t.TempDir())
	bad := append([]string{"infer", "--connect", "localhost" + port, "--text", "x", "--tls-ca", other}, insecure...)
	if err := run(context.Background(), bad, &out, &errOut); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("an untrusted server was accepted: %v", err)
	}
}
