//go:build cuda

package cuda

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>

// The few CUDA driver API types and entry points the backend needs,
// declared here so that no CUDA header is needed to build. The ABI names are
// the ones cuda.h maps to (the _v2 variants for the 64-bit memory API).
typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext;
typedef void *CUmodule;
typedef void *CUfunction;
typedef void *CUstream;
typedef unsigned long long CUdeviceptr;

typedef struct {
	void *lib;
	CUresult (*Init)(unsigned int);
	CUresult (*DeviceGetCount)(int *);
	CUresult (*DeviceGet)(CUdevice *, int);
	CUresult (*DeviceGetName)(char *, int, CUdevice);
	CUresult (*DeviceGetAttribute)(int *, int, CUdevice);
	CUresult (*PrimaryCtxRetain)(CUcontext *, CUdevice);
	CUresult (*PrimaryCtxRelease)(CUdevice);
	CUresult (*CtxSetCurrent)(CUcontext);
	CUresult (*CtxSynchronize)(void);
	CUresult (*ModuleLoadData)(CUmodule *, const void *);
	CUresult (*ModuleUnload)(CUmodule);
	CUresult (*ModuleGetFunction)(CUfunction *, CUmodule, const char *);
	CUresult (*MemAlloc)(CUdeviceptr *, size_t);
	CUresult (*MemFree)(CUdeviceptr);
	CUresult (*MemcpyHtoD)(CUdeviceptr, const void *, size_t);
	CUresult (*MemcpyDtoH)(void *, CUdeviceptr, size_t);
	CUresult (*MemsetD8)(CUdeviceptr, unsigned char, size_t);
	CUresult (*LaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
		unsigned, CUstream, void **, void **);
	CUresult (*GetErrorName)(CUresult, const char **);
	CUresult (*GetErrorString)(CUresult, const char **);
} cp_api;

// cp_open loads the driver and resolves every entry point; it returns NULL
// or a description of what is missing.
static const char *cp_open(cp_api *a) {
	a->lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!a->lib) a->lib = dlopen("libcuda.so", RTLD_NOW | RTLD_LOCAL);
	if (!a->lib) return dlerror();
#define CP_SYM(f, name) do { *(void **)(&a->f) = dlsym(a->lib, name); if (!a->f) return "libcuda has no " name; } while (0)
	CP_SYM(Init, "cuInit");
	CP_SYM(DeviceGetCount, "cuDeviceGetCount");
	CP_SYM(DeviceGet, "cuDeviceGet");
	CP_SYM(DeviceGetName, "cuDeviceGetName");
	CP_SYM(DeviceGetAttribute, "cuDeviceGetAttribute");
	CP_SYM(PrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
	CP_SYM(PrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
	CP_SYM(CtxSetCurrent, "cuCtxSetCurrent");
	CP_SYM(CtxSynchronize, "cuCtxSynchronize");
	CP_SYM(ModuleLoadData, "cuModuleLoadData");
	CP_SYM(ModuleUnload, "cuModuleUnload");
	CP_SYM(ModuleGetFunction, "cuModuleGetFunction");
	CP_SYM(MemAlloc, "cuMemAlloc_v2");
	CP_SYM(MemFree, "cuMemFree_v2");
	CP_SYM(MemcpyHtoD, "cuMemcpyHtoD_v2");
	CP_SYM(MemcpyDtoH, "cuMemcpyDtoH_v2");
	CP_SYM(MemsetD8, "cuMemsetD8_v2");
	CP_SYM(LaunchKernel, "cuLaunchKernel");
	CP_SYM(GetErrorName, "cuGetErrorName");
	CP_SYM(GetErrorString, "cuGetErrorString");
#undef CP_SYM
	return NULL;
}

static CUresult cp_init(cp_api *a) { return a->Init(0); }
static CUresult cp_device_count(cp_api *a, int *n) { return a->DeviceGetCount(n); }
static CUresult cp_device_get(cp_api *a, CUdevice *d, int i) { return a->DeviceGet(d, i); }
static CUresult cp_device_name(cp_api *a, char *s, int n, CUdevice d) { return a->DeviceGetName(s, n, d); }
static CUresult cp_device_attr(cp_api *a, int *v, int attr, CUdevice d) { return a->DeviceGetAttribute(v, attr, d); }
static CUresult cp_ctx_retain(cp_api *a, CUcontext *c, CUdevice d) { return a->PrimaryCtxRetain(c, d); }
static CUresult cp_ctx_release(cp_api *a, CUdevice d) { return a->PrimaryCtxRelease(d); }
static CUresult cp_ctx_set(cp_api *a, CUcontext c) { return a->CtxSetCurrent(c); }
static CUresult cp_ctx_sync(cp_api *a) { return a->CtxSynchronize(); }
static CUresult cp_module_load(cp_api *a, CUmodule *m, const void *img) { return a->ModuleLoadData(m, img); }
static CUresult cp_module_unload(cp_api *a, CUmodule m) { return a->ModuleUnload(m); }
static CUresult cp_module_func(cp_api *a, CUfunction *f, CUmodule m, const char *name) { return a->ModuleGetFunction(f, m, name); }
static CUresult cp_mem_alloc(cp_api *a, CUdeviceptr *p, size_t n) { return a->MemAlloc(p, n); }
static CUresult cp_mem_free(cp_api *a, CUdeviceptr p) { return a->MemFree(p); }
static CUresult cp_htod(cp_api *a, CUdeviceptr d, const void *h, size_t n) { return a->MemcpyHtoD(d, h, n); }
static CUresult cp_dtoh(cp_api *a, void *h, CUdeviceptr d, size_t n) { return a->MemcpyDtoH(h, d, n); }
static CUresult cp_memset(cp_api *a, CUdeviceptr d, size_t n) { return a->MemsetD8(d, 0, n); }

// cp_launch launches f with nargs 64-bit parameters on the default stream.
static CUresult cp_launch(cp_api *a, CUfunction f, unsigned gx, unsigned gy, unsigned bx, uint64_t *args, int nargs) {
	void *params[64];
	if (nargs > 64) return 1; // CUDA_ERROR_INVALID_VALUE
	for (int i = 0; i < nargs; i++) params[i] = &args[i];
	return a->LaunchKernel(f, gx, gy, 1, bx, 1, 1, 0, NULL, params, NULL);
}

static const char *cp_error(cp_api *a, CUresult r) {
	const char *name = NULL, *desc = NULL;
	if (a->GetErrorName) a->GetErrorName(r, &name);
	if (a->GetErrorString) a->GetErrorString(r, &desc);
	return desc ? desc : (name ? name : "unknown CUDA error");
}
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// driver is the loaded CUDA driver API. Its function table lives in C
// memory and is written once, by openDriver.
type driver struct {
	api *C.cp_api
}

// cuError is a failed driver call.
type cuError struct {
	call string
	code int
	desc string
}

func (e *cuError) Error() string {
	return fmt.Sprintf("%s: CUDA error %d (%s)", e.call, e.code, e.desc)
}

func (d *driver) check(call string, r C.CUresult) error {
	if r == 0 {
		return nil
	}
	return &cuError{call: call, code: int(r), desc: C.GoString(C.cp_error(d.api, r))}
}

// openDriver dlopens libcuda and runs cuInit. It fails, without exiting,
// where there is no driver or no device.
func openDriver() (*driver, error) {
	api := (*C.cp_api)(C.calloc(1, C.size_t(unsafe.Sizeof(C.cp_api{}))))
	if msg := C.cp_open(api); msg != nil {
		err := fmt.Errorf("cannot load the CUDA driver: %s", C.GoString(msg))
		C.free(unsafe.Pointer(api))
		return nil, err
	}
	d := &driver{api: api}
	if err := d.check("cuInit", C.cp_init(api)); err != nil {
		return nil, err
	}
	return d, nil
}

// device is one GPU with its primary context and the loaded module.
type device struct {
	drv  *driver
	dev  C.CUdevice
	ctx  C.CUcontext
	mod  C.CUmodule
	name string
	sm   int // compute capability, e.g. 90
}

const (
	attrComputeCapabilityMajor = 75
	attrComputeCapabilityMinor = 76
)

func (d *driver) openDevice(ordinal int, image []byte) (*device, error) {
	var count C.int
	if err := d.check("cuDeviceGetCount", C.cp_device_count(d.api, &count)); err != nil {
		return nil, err
	}
	if int(count) <= ordinal {
		return nil, fmt.Errorf("no CUDA device %d (%d found)", ordinal, int(count))
	}
	dv := &device{drv: d}
	if err := d.check("cuDeviceGet", C.cp_device_get(d.api, &dv.dev, C.int(ordinal))); err != nil {
		return nil, err
	}
	var name [256]C.char
	if err := d.check("cuDeviceGetName", C.cp_device_name(d.api, &name[0], 256, dv.dev)); err != nil {
		return nil, err
	}
	dv.name = C.GoString(&name[0])
	var major, minor C.int
	if err := d.check("cuDeviceGetAttribute", C.cp_device_attr(d.api, &major, attrComputeCapabilityMajor, dv.dev)); err != nil {
		return nil, err
	}
	if err := d.check("cuDeviceGetAttribute", C.cp_device_attr(d.api, &minor, attrComputeCapabilityMinor, dv.dev)); err != nil {
		return nil, err
	}
	dv.sm = int(major)*10 + int(minor)
	if err := d.check("cuDevicePrimaryCtxRetain", C.cp_ctx_retain(d.api, &dv.ctx, dv.dev)); err != nil {
		return nil, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := dv.setCurrent(); err != nil {
		return nil, err
	}
	img := C.CBytes(append(image, 0)) // a PTX image must be NUL-terminated
	defer C.free(img)
	if err := d.check("cuModuleLoadData", C.cp_module_load(d.api, &dv.mod, img)); err != nil {
		_ = d.check("cuDevicePrimaryCtxRelease", C.cp_ctx_release(d.api, dv.dev))
		return nil, err
	}
	return dv, nil
}

// setCurrent binds the context to the calling OS thread (which the caller
// keeps locked).
func (dv *device) setCurrent() error {
	return dv.drv.check("cuCtxSetCurrent", C.cp_ctx_set(dv.drv.api, dv.ctx))
}

func (dv *device) close() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := dv.setCurrent(); err != nil {
		return err
	}
	if err := dv.drv.check("cuModuleUnload", C.cp_module_unload(dv.drv.api, dv.mod)); err != nil {
		return err
	}
	return dv.drv.check("cuDevicePrimaryCtxRelease", C.cp_ctx_release(dv.drv.api, dv.dev))
}

// kernelFunc is a kernel of the loaded module.
type kernelFunc struct{ f C.CUfunction }

func (dv *device) function(name string) (kernelFunc, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var f C.CUfunction
	if err := dv.drv.check("cuModuleGetFunction("+name+")", C.cp_module_func(dv.drv.api, &f, dv.mod, cname)); err != nil {
		return kernelFunc{}, err
	}
	return kernelFunc{f}, nil
}

func (dv *device) alloc(words int) (uint64, error) {
	var p C.CUdeviceptr
	if err := dv.drv.check("cuMemAlloc", C.cp_mem_alloc(dv.drv.api, &p, C.size_t(8*words))); err != nil {
		return 0, err
	}
	if err := dv.drv.check("cuMemsetD8", C.cp_memset(dv.drv.api, p, C.size_t(8*words))); err != nil {
		return 0, err
	}
	return uint64(p), nil
}

func (dv *device) free(p uint64) error {
	return dv.drv.check("cuMemFree", C.cp_mem_free(dv.drv.api, C.CUdeviceptr(p)))
}

func (dv *device) htod(dst uint64, src []uint64) error {
	if len(src) == 0 {
		return nil
	}
	return dv.drv.check("cuMemcpyHtoD", C.cp_htod(dv.drv.api, C.CUdeviceptr(dst), unsafe.Pointer(&src[0]), C.size_t(8*len(src))))
}

func (dv *device) dtoh(dst []uint64, src uint64) error {
	if len(dst) == 0 {
		return nil
	}
	return dv.drv.check("cuMemcpyDtoH", C.cp_dtoh(dv.drv.api, unsafe.Pointer(&dst[0]), C.CUdeviceptr(src), C.size_t(8*len(dst))))
}

func (dv *device) sync() error { return dv.drv.check("cuCtxSynchronize", C.cp_ctx_sync(dv.drv.api)) }

func (dv *device) launch(name string, f kernelFunc, gx, gy, bx int, args []uint64) error {
	if gy > 65535 || gx < 1 || gy < 1 {
		return fmt.Errorf("cannot launch %s: grid %d x %d out of range", name, gx, gy)
	}
	return dv.drv.check("cuLaunchKernel("+name+")",
		C.cp_launch(dv.drv.api, f.f, C.uint(gx), C.uint(gy), C.uint(bx), (*C.uint64_t)(unsafe.Pointer(&args[0])), C.int(len(args))))
}
