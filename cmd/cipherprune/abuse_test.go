package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/engine"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// The abuse test's attack and the bounds the server must stay within.
const (
	abuseIdle    = 500 // connections that connect and say nothing
	abuseStalled = 50  // connections that complete the handshake, announce a 256 MiB request and stall

	// abuseHeapBound bounds the Go heap the server obtains from the system
	// (MemStats.HeapSys) during the attack, and abuseRSSBound its peak
	// resident memory (VmHWM): the model, one client's keys at
	// InsecureTest11 (about 83 MB) and the session's work, with room to
	// spare, and far below the 50 x 256 MiB = 12.5 GiB the stalled
	// requests announce.
	abuseHeapBound = 768 << 20
	abuseRSSBound  = 1 << 30
)

// abuseChildEnv, when set, makes this test binary run the serve command
// with its arguments (see TestMain and abuseChild).
const abuseChildEnv = "CIPHERPRUNE_ABUSE_CHILD"

// abuseReport is what the child reports on stdout when serve returns.
type abuseReport struct {
	Err             string // serve's error, if any
	PeakHeapInuse   uint64 // MemStats.HeapInuse, sampled every 20 ms
	PeakHeapSys     uint64 // MemStats.HeapSys, sampled the same
	PeakSys         uint64 // MemStats.Sys, sampled the same
	GoroutinesStart int    // when serve started
	GoroutinesPeak  int
	GoroutinesEnd   int    // once serve returned
	Leaks           string // goleak's finding once serve returned, if any
}

// abuseReportPrefix starts the report's line.
const abuseReportPrefix = "abuse-report: "

// abuseChild runs the serve command with args until SIGTERM, sampling its
// memory and goroutines, then checks for leaked goroutines and prints an
// abuseReport. It returns the process's exit status.
func abuseChild(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	ignore := goleak.IgnoreCurrent()
	rep := abuseReport{GoroutinesStart: runtime.NumGoroutine()}
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			rep.PeakHeapInuse = max(rep.PeakHeapInuse, ms.HeapInuse)
			rep.PeakHeapSys = max(rep.PeakHeapSys, ms.HeapSys)
			rep.PeakSys = max(rep.PeakSys, ms.Sys)
			rep.GoroutinesPeak = max(rep.GoroutinesPeak, runtime.NumGoroutine())
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	err := run(ctx, args, os.Stdout, os.Stderr)
	close(done)
	<-sampled
	if err != nil {
		rep.Err = err.Error()
	}
	rep.GoroutinesEnd = runtime.NumGoroutine()
	if lerr := goleak.Find(ignore); lerr != nil {
		rep.Leaks = lerr.Error()
	}
	b, _ := json.Marshal(rep)
	fmt.Printf("%s%s\n", abuseReportPrefix, b)
	if rep.Err != "" || rep.Leaks != "" {
		return 1
	}
	return 0
}

// procStatus returns a field of /proc/pid/status in bytes (VmRSS, VmHWM).
func procStatus(pid int, field string) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// TestServeUnderAbuse starts "cipherprune serve" in a child process,
// opens 500 connections that say nothing and 50 that complete the
// handshake, announce a 256 MiB session request and stall, and meanwhile
// runs a real private inference against it. The inference must succeed,
// the server's memory stay under abuseHeapBound and abuseRSSBound, the 50
// stalled requests must still be waiting for their payload when the
// server stops (so they were held, not dropped), and no goroutine may
// leak in the server once it stopped. It takes about a minute, so it runs
// only when asked:
//
//	CIPHERPRUNE_ABUSE=1 go test ./cmd/cipherprune -run TestServeUnderAbuse -v
func TestServeUnderAbuse(t *testing.T) {
	if os.Getenv("CIPHERPRUNE_ABUSE") == "" {
		t.Skip("about a minute; run with CIPHERPRUNE_ABUSE=1")
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	hello := clientHello(t)
	pub, err := engine.LoadPublic(shippedModel)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := engine.NewClient(pub, engine.ClientConfig{Preset: ckks.InsecureTest11, AllowInsecure: true})
	if err != nil {
		t.Fatal(err)
	}

	// The server: sessions enough for the stalled clients and the real one,
	// the default --max-conns (128), a short handshake timeout so that the
	// silent connections make room, the default idle timeout (5 minutes:
	// the stalled clients stay stalled for the whole test).
	cmd := exec.Command(os.Args[0], "serve", "--listen", "127.0.0.1:0", "--model", shippedModel, "--preset", ckks.InsecureTest11, "--allow-insecure",
		"--max-sessions", "64", "--handshake-timeout", "2s", "--session-timeout", "10m")
	cmd.Env = append(os.Environ(), abuseChildEnv+"=1")
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	var logMu sync.Mutex
	var logLines []string
	addrc := make(chan string, 1)
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if _, rest, ok := strings.Cut(line, "listening on "); ok && strings.HasPrefix(line, "serve: ") {
				addr, _, _ := strings.Cut(rest, " ")
				addrc <- addr
			}
			logMu.Lock()
			logLines = append(logLines, line)
			logMu.Unlock()
		}
	}()
	var addr string
	select {
	case addr = <-addrc:
	case <-time.After(2 * time.Minute):
		t.Fatal("serve did not start")
	}

	// Sample the server's resident memory from outside as well.
	var peakRSS uint64
	stopRSS, rssDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(rssDone)
		for {
			if rss, err := procStatus(pid, "VmRSS"); err == nil {
				peakRSS = max(peakRSS, rss)
			}
			select {
			case <-stopRSS:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()

	// The attack.
	var conns []net.Conn
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	for range abuseIdle {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("idle connection %d: %v", len(conns), err)
		}
		conns = append(conns, nc)
	}
	var huge [wire.HeaderLen]byte
	binary.BigEndian.PutUint16(huge[0:], uint16(engine.MsgSession))
	binary.BigEndian.PutUint64(huge[4:], wire.DefaultMaxFrame)
	stallErrs := make(chan error, abuseStalled)
	for i := range abuseStalled {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("stalled connection %d: %v", i, err)
		}
		conns = append(conns, nc)
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Minute)) // a hang detector
		go func() {
			// The server answers once it accepts the connection, which may
			// be after the silent ones ahead of it have timed out.
			if _, err := nc.Write(hello); err != nil {
				stallErrs <- err
				return
			}
			if typ, _, err := readFrame(nc); err != nil || typ != uint16(wire.TypeHello) {
				stallErrs <- fmt.Errorf("no hello (type %#x): %v", typ, err)
				return
			}
			_, err := nc.Write(huge[:])
			stallErrs <- err
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	nc, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	res, err := cli.Infer(ctx, nc, "a wonderful evening")
	inferTime := time.Since(start)
	if err != nil {
		t.Fatalf("the real client's inference under attack: %v", err)
	}
	for range abuseStalled {
		if err := <-stallErrs; err != nil {
			t.Errorf("stalled client: %v", err)
		}
	}
	hwm, err := procStatus(pid, "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	close(stopRSS)
	<-rssDone

	// Stop the server; it reports its memory and goroutines.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-logged
	werr := cmd.Wait()
	var rep abuseReport
	for _, line := range strings.Split(stdout.String(), "\n") {
		if j, ok := strings.CutPrefix(line, abuseReportPrefix); ok {
			if err := json.Unmarshal([]byte(j), &rep); err != nil {
				t.Fatal(err)
			}
		}
	}
	if werr != nil || rep.Err != "" || rep.Leaks != "" {
		t.Errorf("serve: exit %v, error %q, leaked goroutines: %s", werr, rep.Err, rep.Leaks)
	}
	var held, handshakes int
	for _, line := range logLines {
		if strings.Contains(line, "payload interrupted after 0 of 268435456 bytes: context canceled") {
			held++
		}
		if strings.Contains(line, "no handshake within 2s") {
			handshakes++
		}
	}
	t.Logf("inference under attack: label %s in %.1f s (session %.1f s)", res.LabelName, inferTime.Seconds(), res.Report.Seconds)
	t.Logf("server memory: peak HeapInuse %d MiB, HeapSys %d MiB, Sys %d MiB; VmHWM %d MiB, sampled VmRSS peak %d MiB",
		rep.PeakHeapInuse>>20, rep.PeakHeapSys>>20, rep.PeakSys>>20, hwm>>20, peakRSS>>20)
	t.Logf("server goroutines: %d at start, %d at peak, %d after serve returned; %d silent connections timed out in the handshake, %d stalled requests held to the end",
		rep.GoroutinesStart, rep.GoroutinesPeak, rep.GoroutinesEnd, handshakes, held)
	if rep.PeakHeapSys > abuseHeapBound {
		t.Errorf("the server's heap reached %d MiB, bound %d MiB", rep.PeakHeapSys>>20, abuseHeapBound>>20)
	}
	if hwm > abuseRSSBound {
		t.Errorf("the server's resident memory peaked at %d MiB, bound %d MiB", hwm>>20, abuseRSSBound>>20)
	}
	if held != abuseStalled {
		t.Errorf("%d of the %d stalled requests were still waiting for their payload at the end", held, abuseStalled)
	}
	if handshakes == 0 {
		t.Error("no silent connection was timed out in the handshake")
	}
}
