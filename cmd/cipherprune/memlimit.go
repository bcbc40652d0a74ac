package main

import (
	"bufio"
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// memoryLimitFraction is the share of the machine's memory the Go
// runtime's soft limit is set to when GOMEMLIMIT is not: a server holds
// its encoded weights for its whole life (12 GB for BERT-base), and the
// collector's default target of twice the live heap would exceed the
// machine long before the sessions' own garbage does.
const memoryLimitFraction = 0.8

// The collector's target (GOGC) when GOGC is not set follows the live
// heap (tuneGC): 100, the runtime's default, while the live heap is small,
// and lower as it grows, so that a heap may grow by about gcHeadroom
// between collections, and never by less than gcMinPercent of itself. A
// BERT-base server's live heap is gigabytes of pointer-free encoded
// weights, cheap to collect, while the default target let its first layer
// fault in as many fresh pages (BenchmarkLayer/bert-base at n = 128: the
// first layer of a process 19.6 s at GOGC=100 and 14.9 s at 10, the next
// ones 16.7 and 14.3 s, peak RSS 9.9 and 6.2 GB). A small model's heap
// keeps the default: at GOGC=10 sentiment-tiny's pruned bench ran 3-6%
// slower (4.9 against 5.1-5.2 s on the layers).
const (
	gcHeadroom   = 1 << 30
	gcMinPercent = 10
	gcMaxPercent = 100
	gcTunePeriod = 200 * time.Millisecond
)

// gcPercentFor returns the collector's target for a live heap of live
// bytes: 100·gcHeadroom/live within [gcMinPercent, gcMaxPercent].
func gcPercentFor(live uint64) int {
	if live == 0 {
		return gcMaxPercent
	}
	return int(min(max(100*gcHeadroom/live, gcMinPercent), gcMaxPercent))
}

// tuneGC sets the collector's target from the live heap every
// gcTunePeriod until ctx is done, unless GOGC is set.
func tuneGC(ctx context.Context) {
	if os.Getenv("GOGC") != "" {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	last := -1
	t := time.NewTicker(gcTunePeriod)
	defer t.Stop()
	for {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			if pct := gcPercentFor(sample[0].Value.Uint64()); pct != last {
				debug.SetGCPercent(pct)
				last = pct
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// setMemoryLimit sets the runtime's soft memory limit to
// memoryLimitFraction of MemTotal (/proc/meminfo) unless GOMEMLIMIT is
// set; where the total is unknown it leaves the default.
func setMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	if total := memTotal(); total > 0 {
		debug.SetMemoryLimit(int64(memoryLimitFraction * float64(total)))
	}
}

// memTotal returns the machine's memory in bytes, 0 if unknown.
func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
