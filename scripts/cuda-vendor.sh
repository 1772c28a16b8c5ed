#!/usr/bin/env bash
# Packs what an offline build of `carve --features cuda` needs into .cuda-carry/ (git-ignored), for a
# GPU machine that has nvcc but no network and no Rust (the device tool's H100/H200 machines):
#
#   .cuda-carry/p1/vendor.tar.xz  every crate of Cargo.lock (`cargo vendor`), with the crates that no
#                                 x86_64-unknown-linux-gnu build uses (windows*, winapi*, wasm*, ...)
#                                 reduced to stubs (manifest kept, sources emptied): 14 MB;
#   with --toolchain, a minimal copy of the active toolchain (rustc, cargo, the x86_64-linux std,
#   rust-lld; 118 MB of xz) in parts that fit the device tool's 64 MiB-per-call limit:
#   .cuda-carry/p1/rust-1.tar.xz  libLLVM (40 MB)
#   .cuda-carry/p2/rust-2.tar.xz  librustc_driver (37 MB)
#   .cuda-carry/p2/rust-3.tar.xz  bin/{rustc,cargo}, rust-lld (13 MB)
#   .cuda-carry/p3/rust-4.tar.xz  the std rlibs (28 MB)
#
# Nothing here changes the default build: the crates-io -> vendor replacement is a config file that
# scripts/cuda-device.sh writes on the GPU machine and passes with `--config` (no .cargo/config.toml).
#
# Usage (repo root, where crates.io is reachable; --toolchain takes ~10 min of xz on 2 cores):
#   scripts/cuda-vendor.sh [--toolchain]
# then, with the device tool, one call per part while the machine stays warm (30 s):
#   run(carry=[".cuda-carry/p1"], command="UNPACK_ONLY=1 bash scripts/cuda-device.sh")
#   run(carry=[".cuda-carry/p2"], command="UNPACK_ONLY=1 bash scripts/cuda-device.sh")
#   run(carry=[".cuda-carry/p3"], command="bash scripts/cuda-device.sh")   # build, train, test
# (each call unpacks what it carries into /opt/carve-cuda, which lasts as long as the machine).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/.cuda-carry
TOOLCHAIN=0
[[ "${1:-}" == "--toolchain" ]] && TOOLCHAIN=1
TARGET=x86_64-unknown-linux-gnu

mkdir -p "$OUT/p1" "$OUT/p2" "$OUT/p3"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

echo "== cargo vendor"
cargo vendor --versioned-dirs --locked "$TMP/vendor" >/dev/null

echo "== stubbing crates unused on $TARGET"
# Packages in the resolve graph for the target platform, every workspace feature on (so `cuda`
# and the dev-dependencies of `cargo test` are in). Everything else vendored is unused there.
cargo metadata --format-version 1 --locked --all-features --filter-platform "$TARGET" >"$TMP/meta.json"
python3 - "$TMP/meta.json" "$TMP/vendor" <<'EOF'
import json, os, shutil, sys, tomllib
meta, vendor = sys.argv[1], sys.argv[2]
m = json.load(open(meta))
pk = {p["id"]: p for p in m["packages"]}
need = {f'{pk[n["id"]]["name"]}-{pk[n["id"]]["version"]}' for n in m["resolve"]["nodes"] if pk[n["id"]]["source"]}
saved = 0
for d in sorted(os.listdir(vendor)):
    if d in need:
        continue
    path = os.path.join(vendor, d)
    manifest = open(os.path.join(path, "Cargo.toml"), "rb").read()
    checksum = json.load(open(os.path.join(path, ".cargo-checksum.json")))["package"]
    toml = tomllib.loads(manifest.decode())
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)
    shutil.rmtree(path)
    os.makedirs(path)
    open(os.path.join(path, "Cargo.toml"), "wb").write(manifest)
    # Cargo reads (never compiles) these manifests; give every declared target a file.
    files = {"src/lib.rs": ""}
    build = toml.get("package", {}).get("build")
    if isinstance(build, str):
        files[build] = "fn main() {}\n"
    if "path" in toml.get("lib", {}):
        files[toml["lib"]["path"]] = ""
    for kind in ("bin", "example", "test", "bench"):
        for t in toml.get(kind, []):
            if "path" in t:
                files[t["path"]] = "fn main() {}\n"
    for f, text in files.items():
        os.makedirs(os.path.dirname(os.path.join(path, f)), exist_ok=True)
        open(os.path.join(path, f), "w").write(text)
    json.dump({"files": {}, "package": checksum}, open(os.path.join(path, ".cargo-checksum.json"), "w"))
    saved += size
    print(f"  stub {d} (-{size // 1024} KiB)")
print(f"  saved {saved / 2**20:.1f} MiB")
EOF
du -sh "$TMP/vendor"
echo "== vendor.tar.xz"
tar -C "$TMP" -cf - vendor | xz -6 -T0 >"$OUT/p1/vendor.tar.xz"

if [[ $TOOLCHAIN == 1 ]]; then
    echo "== toolchain parts (minimal $(rustc --version))"
    SYS=$(rustc --print sysroot)
    R=$TMP/rust
    mkdir -p "$R/bin" "$R/lib/rustlib/$TARGET/bin"
    cp -a "$SYS/bin/rustc" "$SYS/bin/cargo" "$R/bin/"
    cp -a "$SYS"/lib/lib*.so* "$R/lib/"
    cp -a "$SYS/lib/rustlib/$TARGET/lib" "$R/lib/rustlib/$TARGET/"
    cp -a "$SYS/lib/rustlib/etc" "$R/lib/rustlib/" 2>/dev/null || true
    cp -a "$SYS/lib/rustlib/$TARGET/bin/rust-lld" "$SYS/lib/rustlib/$TARGET/bin/gcc-ld" "$R/lib/rustlib/$TARGET/bin/"
    # Not needed to build: sanitizer runtimes, the std dylib (only for -C prefer-dynamic).
    rm -f "$R/lib/rustlib/$TARGET/lib"/librustc-*_rt.*.a "$R/lib/rustlib/$TARGET/lib"/libstd-*.so
    # Don't strip libLLVM / librustc_driver: they are BOLT-optimised and `strip` breaks them.
    du -sh "$R"
    pack() { # OUTFILE PATHS... (relative to $TMP)
        local out=$1; shift
        tar -C "$TMP" -cf - "$@" | xz -9 --x86 --lzma2=preset=9 -T0 >"$out"
    }
    (cd "$TMP" && pack "$OUT/p1/rust-1.tar.xz" rust/lib/libLLVM*)
    (cd "$TMP" && pack "$OUT/p2/rust-2.tar.xz" rust/lib/librustc_driver-*.so)
    (cd "$TMP" && pack "$OUT/p2/rust-3.tar.xz" rust/bin "rust/lib/rustlib/$TARGET/bin" $(ls -d rust/lib/rustlib/etc 2>/dev/null))
    (cd "$TMP" && pack "$OUT/p3/rust-4.tar.xz" "rust/lib/rustlib/$TARGET/lib")
fi
ls -l "$OUT"/p*/*.tar.xz
du -sbc "$OUT"/p* # each pN + the work tree (~4 MB) must stay under 64 MiB
