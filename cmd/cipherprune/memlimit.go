package main

import (
	"bufio"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// memoryLimitFraction is the share of the machine's memory the Go
// runtime's soft limit is set to when GOMEMLIMIT is not: a server holds
// its encoded weights for its whole life (12 GB for BERT-base), and the
// collector's default target of twice the live heap would exceed the
// machine long before the sessions' own garbage does.
const memoryLimitFraction = 0.8

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
