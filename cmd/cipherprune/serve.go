package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/cipherprune/cipherprune/engine"
)

// serveOptions are the settings of the serve command.
type serveOptions struct {
	session           sessionFlags
	listen            string
	certFile, keyFile string
	maxSessions       int
	maxConns          int
	sessionTimeout    time.Duration
	handshakeTimeout  time.Duration
	idleTimeout       time.Duration
}

// parseServe parses the serve command's flags and checks the limits.
func parseServe(args []string, stderr io.Writer) (serveOptions, error) {
	var o serveOptions
	fs := newFlagSet("serve", stderr)
	o.session.register(fs, false, true)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:7878", "TCP address to listen on")
	fs.StringVar(&o.certFile, "tls-cert", "", "serve over TLS 1.3 with this PEM certificate (and --tls-key)")
	fs.StringVar(&o.keyFile, "tls-key", "", "PEM private key of --tls-cert")
	fs.IntVar(&o.maxSessions, "max-sessions", 1, "sessions (connections, of any number of inferences) served at once (each holds its client's keys, 10 MB at Elementwise14, and its shares)")
	fs.IntVar(&o.maxConns, "max-conns", 0, "connections held open at once, in the handshake or in a session; beyond it new clients wait in the listen backlog (0: 128, or --max-sessions if more)")
	fs.DurationVar(&o.sessionTimeout, "session-timeout", engine.DefaultSessionTimeout, "end a session whose inference runs longer than this, per inference (an unpruned BERT-base inference at n=128 takes about 5 minutes on 2 cores)")
	fs.DurationVar(&o.handshakeTimeout, "handshake-timeout", engine.DefaultHandshakeTimeout, "disconnect a client that has not completed the handshake, TLS's included, within this long")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", engine.DefaultIdleTimeout, "disconnect a client that sends nothing while a message is due, or reads nothing, for this long (also the longest wait for a session's next inference)")
	if err := fs.Parse(args); err != nil {
		return serveOptions{}, err
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"session-timeout", o.sessionTimeout}, {"handshake-timeout", o.handshakeTimeout}, {"idle-timeout", o.idleTimeout}} {
		if d.v <= 0 {
			return serveOptions{}, fmt.Errorf("serve: invalid --%s %v: want a positive duration", d.name, d.v)
		}
	}
	if o.maxSessions < 1 {
		return serveOptions{}, fmt.Errorf("serve: invalid --max-sessions %d: want at least 1", o.maxSessions)
	}
	if o.maxConns < 0 || (o.maxConns > 0 && o.maxConns < o.maxSessions) {
		return serveOptions{}, fmt.Errorf("serve: invalid --max-conns %d: want 0 (default) or at least --max-sessions (%d)", o.maxConns, o.maxSessions)
	}
	return o, nil
}

// serverConfig returns the engine's configuration for o.
func (o serveOptions) serverConfig(stderr io.Writer) engine.ServerConfig {
	cfg := o.session.serverConfig(stderr, o.maxSessions)
	cfg.MaxConns = o.maxConns
	cfg.SessionTimeout = o.sessionTimeout
	cfg.HandshakeTimeout = o.handshakeTimeout
	cfg.IdleTimeout = o.idleTimeout
	return cfg
}

// runServe serves private inferences on a TCP address until interrupted.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseServe(args, stderr)
	if err != nil {
		return err
	}
	m, err := engine.LoadModel(o.session.model)
	if err != nil {
		return err
	}
	srv, err := engine.NewServer(m, o.serverConfig(stderr))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	transport := "TCP"
	if o.certFile != "" || o.keyFile != "" {
		cert, err := tls.LoadX509KeyPair(o.certFile, o.keyFile)
		if err != nil {
			ln.Close()
			return fmt.Errorf("serve: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
		transport = "TLS 1.3"
	}
	fmt.Fprintf(stderr, "serve: model %s, preset %s, listening on %s (%s)\n", o.session.model, o.session.preset, ln.Addr(), transport)
	return srv.Serve(ctx, ln)
}
