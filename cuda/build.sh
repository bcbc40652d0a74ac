#!/bin/sh
# Builds the device code that package cuda embeds (go:embed bin):
#   bin/kernels.fatbin  nvcc, SASS for sm_90 plus PTX for JIT on newer GPUs
#   bin/kernels.ptx     PTX only (nvcc, or clang when nvcc is absent)
# Run it on a machine with the CUDA toolkit, then build with -tags cuda.
# The kernels need no CUDA header beyond what nvcc provides implicitly, and
# none at all with clang (-nocudainc -nocudalib).
set -eu
cd "$(dirname "$0")"
ARCH="${CUDA_ARCH:-90}"
SRC=kernels/kernels.cu
mkdir -p bin
if command -v nvcc >/dev/null 2>&1; then
	nvcc --version | tail -n 2
	# -fmad=false: no fused multiply-add, so the float64 correction term of
	# the basis extension is computed exactly as Go computes it.
	nvcc -O3 -fmad=false -std=c++17 -fatbin \
		-gencode "arch=compute_${ARCH},code=sm_${ARCH}" \
		-gencode "arch=compute_${ARCH},code=compute_${ARCH}" \
		-o bin/kernels.fatbin "$SRC"
	nvcc -O3 -fmad=false -std=c++17 -ptx -arch="compute_${ARCH}" -o bin/kernels.ptx "$SRC"
	echo "built bin/kernels.fatbin and bin/kernels.ptx with nvcc for sm_${ARCH}"
else
	CLANG="${CLANG:-$(command -v clang-19 || command -v clang || true)}"
	if [ -z "$CLANG" ]; then
		echo "neither nvcc nor clang found" >&2
		exit 1
	fi
	"$CLANG" -x cuda --cuda-device-only --cuda-gpu-arch="sm_${ARCH}" -nocudainc -nocudalib \
		-O3 -ffp-contract=off -Wall -S -o bin/kernels.ptx "$SRC"
	rm -f bin/kernels.fatbin
	echo "built bin/kernels.ptx with $CLANG for sm_${ARCH} (no nvcc: the driver compiles the PTX at load time)"
fi
