package sim

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/tpwallet/tpwallet/internal/journal"
)

// dataDir is where the store lives on the simulated file system.
const dataDir = "db"

// Fault is a kind of fault the simulation injects.
type Fault uint8

// The faults, by where they strike. The crash faults take a crash image (what the disk
// holds after a power loss at that point: everything synced, and a torn share of what was
// not) and let the live process go on unheard; recovery starts from the image. The error
// faults make an operation of a commit fail, and every write after it, until the simulation
// crashes the process and recovers: the engine must stop taking writes first.
const (
	FaultNone        Fault = iota
	CrashInCommit          // power loss at byte b of a commit's writes, or before its sync
	CrashAfterCommit       // power loss once a commit returned, before the engine replies
	SyncError              // the sync of a commit fails (EIO)
	WriteError             // the write of a commit that reaches byte b writes up to b and fails (EIO)
	DiskFull               // the same with ENOSPC
	CrashInRecovery        // power loss just before operation k of reopening the store
	CrashInClose           // power loss just before operation k of a clean shutdown
	IdleCrash              // power loss between two requests
	FaultKinds
)

var faultNames = [FaultKinds]string{"none", "crash_in_commit", "crash_after_commit", "sync_error",
	"write_error", "disk_full", "crash_in_recovery", "crash_in_close", "idle_crash"}

func (f Fault) String() string {
	if f < FaultKinds {
		return faultNames[f]
	}
	return fmt.Sprintf("fault(%d)", f)
}

// crash reports whether f takes a crash image where it strikes (rather than failing).
func (f Fault) crash() bool {
	return f == CrashInCommit || f == CrashAfterCommit || f == CrashInRecovery || f == CrashInClose
}

// Tear is what became of the unsynced tail of a file (bytes written after its last sync) in a
// crash image.
type Tear uint8

// Tears, chosen at random for every file with an unsynced tail.
const (
	TearDrop    Tear = iota // all of it lost
	TearKeep                // all of it there
	TearPrefix              // a prefix there, cut at a random byte (a short write)
	TearHoles               // random 4 KiB blocks there, zeros between (pages written out of order)
	TearGarbage             // a prefix there whose last bytes are garbage (a torn sector)
	TearKinds
)

var tearNames = [TearKinds]string{"drop", "keep", "prefix", "holes", "garbage"}

func (t Tear) String() string { return tearNames[t] }

// window names the part of the run whose operations a plan counts.
type window uint8

const (
	winNone window = iota
	winCommit
	winOpen
	winClose
)

var windowNames = [...]string{"idle", "commit", "open", "close"}

// plan is the fault to inject in the next window of its kind. Operations are counted in
// the window, writes aside: how many calls Pebble splits a commit's write into depends on
// when its WAL flusher goroutine wakes up, so writes are counted in bytes, which do not.
type plan struct {
	fault  Fault
	window window
	op     int // the operation before which it strikes (SyncError: the first sync from it on)
	// CrashInCommit, WriteError, DiskFull: the byte of the window's writes where it strikes,
	// or, if they end before, the next operation (the sync); -1: op says where.
	at int
}

func (p plan) String() string {
	switch {
	case p.fault == FaultNone:
		return "none"
	case p.at >= 0:
		return fmt.Sprintf("%s@byte%d", p.fault, p.at)
	}
	return fmt.Sprintf("%s@op%d", p.fault, p.op)
}

// err is the error of an error fault.
func (p plan) err(path string) error {
	if p.fault == DiskFull {
		return &os.PathError{Op: "write", Path: path, Err: syscall.ENOSPC}
	}
	return errorfs.ErrInjected
}

// injector is the errorfs.Injector of the simulation: it counts the operations of the current
// window that change the disk (reads, removes and closes are neither counted nor failed:
// Pebble does them from background goroutines at times no seed controls) and the bytes of
// its writes (which shimFile reports), strikes the plan's fault where the plan says, and
// fails every write after an error fault. It is called from Pebble's goroutines; the
// simulation's goroutine arms and disarms it.
type injector struct {
	seed int64

	mu      sync.Mutex
	live    *vfs.MemFS // the file system the store runs on now
	win     window
	ops     int // operations counted in win, writes aside
	written int // bytes written in win
	plan    plan
	fired   bool
	failing error           // after an error fault: every later write fails with it
	image   *vfs.MemFS      // taken where a crash fault struck
	current *journal.Commit // the commit of the open commit window
	struck  *journal.Commit // the commit the plan struck in
	images  int             // crash images taken: each tears with its own random stream
	trace   []string        // what happened since the last takeTrace: the run's digest covers it
	wpath   string          // the file of the latest writes, not yet in the trace
	wbytes  int             // how many bytes they wrote
	tears   [TearKinds]int
	panics  []string // panics recovered from the store that no error fault explains
}

func (j *injector) String() string { return "sim" }

// MaybeError implements errorfs.Injector.
func (j *injector) MaybeError(op errorfs.Op) error {
	if op.Kind.ReadOrWrite() == errorfs.OpIsRead || op.Kind == errorfs.OpRemove ||
		op.Kind == errorfs.OpRemoveAll {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.flushWrites()
	if j.failing != nil {
		j.trace = append(j.trace, fmt.Sprintf("%s %s failed", opName(op.Kind), op.Path))
		return j.failing
	}
	if op.Kind == errorfs.OpFileWrite || op.Kind == errorfs.OpFileWriteAt {
		return nil // shimFile reports its bytes to admit
	}
	k := j.ops
	j.ops++
	j.trace = append(j.trace, fmt.Sprintf("%s:%d %s %s", windowNames[j.win], k, opName(op.Kind), op.Path))
	p := j.plan
	if !j.armedLocked() || k < p.op {
		return nil
	}
	switch p.fault {
	case CrashInCommit, CrashInRecovery, CrashInClose:
		j.fire("crash image")
		j.image = j.crashImageLocked()
		return nil // the live process goes on, unheard: recovery starts from the image
	case SyncError:
		if !isSync(op.Kind) {
			return nil
		}
		j.fire("the sync fails")
		j.failing = p.err(op.Path)
		return j.failing
	case WriteError, DiskFull: // the writes ended before byte p.at: this operation fails
		j.fire("the operation fails")
		j.failing = p.err(op.Path)
		return j.failing
	}
	return nil
}

// armedLocked reports whether the plan may strike in the current window; j.mu is held.
func (j *injector) armedLocked() bool {
	p := j.plan
	return j.win != winNone && p.window == j.win && !j.fired && p.fault != FaultNone
}

// fire marks the plan as struck; j.mu is held.
func (j *injector) fire(what string) {
	j.fired = true
	j.struck = j.current
	j.trace = append(j.trace, fmt.Sprintf("fault %s: %s", j.plan, what))
}

// admit is told by shimFile of a write of n bytes to path before it happens, and says how
// many bytes to write before the plan strikes (n if it does not), and whether it strikes as
// a crash (write cut bytes, take a crash image, write the rest) or an error (write cut bytes
// and fail with err).
func (j *injector) admit(path string, n int) (cut int, crash bool, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.wpath != path {
		j.flushWrites()
		j.wpath = path
	}
	from := j.written
	j.written += n
	p := j.plan
	if !j.armedLocked() || p.at < from || p.at >= from+n {
		j.wbytes += n
		return n, false, nil
	}
	cut = p.at - from
	j.wbytes += cut
	j.flushWrites()
	switch p.fault {
	case CrashInCommit:
		j.fire("crash image")
		return cut, true, nil
	case WriteError, DiskFull:
		j.fire("the write fails")
		j.failing = p.err(path)
		j.written = p.at
		return cut, false, j.failing
	}
	j.wpath, j.wbytes = path, n-cut
	return n, false, nil
}

// flushWrites puts the writes not yet in the trace there, as one line whatever the calls
// they took; j.mu is held.
func (j *injector) flushWrites() {
	if j.wbytes > 0 {
		j.trace = append(j.trace, fmt.Sprintf("%s: write %s %d bytes", windowNames[j.win], j.wpath, j.wbytes))
	}
	j.wpath, j.wbytes = "", 0
}

func isSync(k errorfs.OpKind) bool {
	return k == errorfs.OpFileSync || k == errorfs.OpFileSyncData || k == errorfs.OpFileSyncTo
}

var opNames = map[errorfs.OpKind]string{
	errorfs.OpCreate: "create", errorfs.OpLink: "link", errorfs.OpRename: "rename",
	errorfs.OpReuseForWrite: "reuse", errorfs.OpMkdirAll: "mkdir", errorfs.OpLock: "lock",
	errorfs.OpFilePreallocate: "preallocate", errorfs.OpFileWrite: "write",
	errorfs.OpFileWriteAt: "writeat", errorfs.OpFileSync: "sync", errorfs.OpFileSyncData: "syncdata",
	errorfs.OpFileSyncTo: "syncto", errorfs.OpFileFlush: "flush", errorfs.OpFileClose: "close",
}

func opName(k errorfs.OpKind) string {
	if s, ok := opNames[k]; ok {
		return s
	}
	return fmt.Sprintf("op%d", k)
}

// arm sets the plan for the next window of its kind.
func (j *injector) arm(p plan) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.plan, j.fired, j.image, j.struck = p, false, nil, nil
}

// strike is what a plan did.
type strike struct {
	fired  bool
	image  *vfs.MemFS      // the crash image of a crash fault
	commit *journal.Commit // the commit it struck in (commit windows)
}

// disarm clears the plan and says what it did.
func (j *injector) disarm() strike {
	j.mu.Lock()
	defer j.mu.Unlock()
	st := strike{fired: j.fired, image: j.image, commit: j.struck}
	j.plan, j.fired, j.image, j.struck = plan{}, false, nil, nil
	return st
}

// begin opens a window: its operations and bytes are counted from 0. c is the commit of a
// commit window.
func (j *injector) begin(w window, c *journal.Commit) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.flushWrites()
	j.win, j.ops, j.written, j.current = w, 0, 0, c
}

func (j *injector) end() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.flushWrites()
	j.win, j.current = winNone, nil
}

// afterCommit strikes CrashAfterCommit: the commit returned, the engine has not replied.
func (j *injector) afterCommit() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.plan.fault == CrashAfterCommit && j.armedLocked() {
		j.flushWrites()
		j.fire("crash image")
		j.image = j.crashImageLocked()
	}
}

// storePanicked notes a panic recovered from the store. Pebble panics (Fatalf) when a write
// or sync of the WAL fails, so after an error fault that is expected; any other panic is a
// finding, which takePanics reports.
func (j *injector) storePanicked(p any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.flushWrites()
	j.trace = append(j.trace, "the store panicked")
	if j.failing == nil {
		j.panics = append(j.panics, fmt.Sprint(p))
	}
}

// takePanics returns the unexpected panics since the last call.
func (j *injector) takePanics() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	p := j.panics
	j.panics = nil
	return p
}

func (j *injector) takeTrace() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.flushWrites()
	t := j.trace
	j.trace = nil
	return t
}

// isFailing reports whether an error fault struck and writes fail.
func (j *injector) isFailing() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.failing != nil
}

// crashImage takes a crash image of the live file system now.
func (j *injector) crashImage() *vfs.MemFS {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.flushWrites()
	return j.crashImageLocked()
}

// crashMidWrite takes the crash image of a CrashInCommit that struck inside a write.
func (j *injector) crashMidWrite() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.image = j.crashImageLocked()
}

// restart makes fs the live file system of a new process: writes work again.
func (j *injector) restart(fs *vfs.MemFS) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.live, j.failing = fs, nil
}

func (j *injector) tearCounts() [TearKinds]int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.tears
}

// crashImageLocked returns what the disk holds after a power loss now: every file as of its
// last sync (vfs.MemFS.CrashClone keeping no unsynced data, which needs no random choices, so
// that Go's random map order cannot change the image), then, for each file whose live data
// extends what was synced, a random Tear of that tail. Every image draws from its own
// stream, seeded by the run's seed, the image's number and the file's name, so that the
// image depends only on the seed and the operations before it. j.mu is held.
func (j *injector) crashImageLocked() *vfs.MemFS {
	img := j.live.CrashClone(vfs.CrashCloneCfg{})
	j.images++
	names, err := img.List(dataDir)
	if err != nil {
		return img // no data directory yet: nothing to tear
	}
	slices.Sort(names)
	for _, name := range names {
		path := img.PathJoin(dataDir, name)
		synced, err1 := readFile(img, path)
		live, err2 := readFile(j.live, path)
		if err1 != nil || err2 != nil || len(live) <= len(synced) || !bytes.HasPrefix(live, synced) {
			continue // a directory, a file removed since, or no unsynced tail to tear
		}
		h := fnv.New64a()
		io.WriteString(h, name)
		rng := rand.New(rand.NewPCG(uint64(j.seed), uint64(j.images)<<32^h.Sum64()))
		tail := live[len(synced):]
		t := Tear(rng.IntN(int(TearKinds)))
		j.tears[t]++
		j.trace = append(j.trace, fmt.Sprintf("tear %s %d bytes: %s", name, len(tail), t))
		if keep := torn(t, tail, rng); len(keep) > 0 {
			if err := appendFile(img, path, int64(len(synced)), keep); err != nil {
				panic(fmt.Sprintf("sim: tear %s: %v", path, err)) // the in-memory FS refused: our bug
			}
		}
	}
	return img
}

// torn returns what of an unsynced tail survives tear t.
func torn(t Tear, tail []byte, rng *rand.Rand) []byte {
	switch t {
	case TearKeep:
		return tail
	case TearPrefix:
		return tail[:rng.IntN(len(tail))]
	case TearHoles:
		const block = 4096
		out := make([]byte, 0, len(tail))
		end := 0
		for i := 0; i < len(tail); i += block {
			b := tail[i:min(i+block, len(tail))]
			if rng.IntN(2) == 0 {
				out = append(out, make([]byte, len(b))...)
				continue
			}
			out = append(out, b...)
			end = len(out)
		}
		return out[:end] // zeros after the last block written are not there at all
	case TearGarbage:
		keep := slices.Clone(tail[:1+rng.IntN(len(tail))])
		n := 1 + rng.IntN(min(len(keep), 512))
		for i := len(keep) - n; i < len(keep); i++ {
			keep[i] = byte(rng.Uint32())
		}
		return keep
	}
	return nil
}

func readFile(fs vfs.FS, path string) ([]byte, error) {
	f, err := fs.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, errors.New("a directory")
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b, nil
}

// appendFile writes b at off in the image and syncs it: the image's files are all synced.
func appendFile(fs vfs.FS, path string, off int64, b []byte) error {
	f, err := fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(b, off)
	return errors.Join(err, f.Sync(), f.Close())
}

// shimFS sits under errorfs and reports the bytes of every write to the injector, which may
// cut it: a write that reaches the file in part and then fails, as one to a full or failing
// disk can, or one that a power loss interrupts. errorfs alone fails an operation before it
// starts.
type shimFS struct {
	vfs.FS
	j *injector
}

func (fs shimFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return fs.wrap(name, f, err)
}

func (fs shimFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, c, opts...)
	return fs.wrap(name, f, err)
}

func (fs shimFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, c)
	return fs.wrap(newname, f, err)
}

func (fs shimFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return shimFile{File: f, path: name, j: fs.j}, nil
}

type shimFile struct {
	vfs.File
	path string
	j    *injector
}

func (f shimFile) Write(p []byte) (int, error) {
	return f.write(p, func(b []byte, off int) (int, error) { return f.File.Write(b) })
}

func (f shimFile) WriteAt(p []byte, off int64) (int, error) {
	return f.write(p, func(b []byte, o int) (int, error) { return f.File.WriteAt(b, off+int64(o)) })
}

// write writes p with w (b at offset off of p) as the injector admits it.
func (f shimFile) write(p []byte, w func(b []byte, off int) (int, error)) (int, error) {
	cut, crash, err := f.j.admit(f.path, len(p))
	if cut == len(p) {
		return w(p, 0)
	}
	n, werr := w(p[:cut], 0)
	if err != nil || werr != nil || !crash {
		return n, errors.Join(err, werr)
	}
	f.j.crashMidWrite()
	m, werr := w(p[cut:], cut) // the live process goes on, unheard
	return n + m, werr
}

// newFS returns the file system a store of the simulation opens: live, under the shim,
// under errorfs with j.
func newFS(live *vfs.MemFS, j *injector) vfs.FS {
	return errorfs.Wrap(shimFS{FS: live, j: j}, j)
}
