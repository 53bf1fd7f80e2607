"""Build the guest image from Debian packages, once per recipe.

    python -m testbed.guest_image build     # or: ovct image build
    python -m testbed.guest_image path      # where the current image is

The image is three files in ``<image dir>/<recipe hash>/``: the Debian cloud
kernel, a busybox initramfs (see :mod:`testbed.guest_files`) and a zstd
squashfs root made by debootstrap (TigerVNC's Xvnc, x11-apps, iproute2).
The root is attached read-only to every guest on every host, as the report's
shared NFS volume was, so live migration moves memory only.  The image is
rebuilt only when the recipe (packages, scripts, builder version) changes.
Default image dir: /var/cache/ovct/images (``OVCT_IMAGE_DIR`` overrides).
"""
from __future__ import annotations

import argparse
import glob
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from testbed import guest_files

BUILDER_VERSION = 1
RECIPE = {
    "builder_version": BUILDER_VERSION,
    "release": "bookworm",
    "variant": "minbase",
    "packages": ["tigervnc-standalone-server", "x11-apps", "iproute2"],
    "kernel_package": "linux-image-cloud-amd64",
    "busybox_package": "busybox-static",
    "modules": list(guest_files.INITRAMFS_MODULES),
    "init": guest_files.init_script(),
    "guest_init": guest_files.GUEST_INIT,
}
DEFAULT_DIR = "/var/cache/ovct/images"


class ImageError(RuntimeError):
    pass


def recipe_hash(recipe: dict = RECIPE) -> str:
    blob = json.dumps(recipe, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def image_root(base: str | None = None) -> str:
    return base or os.environ.get("OVCT_IMAGE_DIR") or DEFAULT_DIR


@dataclass(frozen=True)
class GuestImage:
    path: str

    @property
    def kernel(self) -> str:
        return os.path.join(self.path, "vmlinuz")

    @property
    def initrd(self) -> str:
        return os.path.join(self.path, "initrd.img")

    @property
    def rootfs(self) -> str:
        return os.path.join(self.path, "rootfs.squashfs")

    def complete(self) -> bool:
        return all(os.path.isfile(p) for p in (self.kernel, self.initrd, self.rootfs,
                                               os.path.join(self.path, "recipe.json")))


def current(base: str | None = None) -> GuestImage:
    return GuestImage(os.path.join(image_root(base), recipe_hash()))


def debian_mirror(sources=("/etc/apt/sources.list.d/debian.sources",
                           "/etc/apt/sources.list")) -> str:
    """The Debian mirror apt already uses (debootstrap must use it too)."""
    for path in sources:
        try:
            text = open(path).read()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split()
            if not words or words[0].startswith("#"):
                continue
            urls = [w for w in words if w.startswith(("http://", "https://"))]
            for url in urls:
                if "security" not in url:
                    return url.rstrip("/")
    return "http://deb.debian.org/debian"


def _run(cmd: list[str], log, **kw) -> str:
    log("  $ " + " ".join(cmd))
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if res.returncode != 0:
        raise ImageError(f"{' '.join(cmd)} failed ({res.returncode}):\n"
                         f"{res.stdout[-2000:]}{res.stderr[-2000:]}")
    return res.stdout


def _kernel_package(meta: str, log) -> str:
    """The versioned kernel package a metapackage such as
    linux-image-cloud-amd64 points at."""
    for attempt in (1, 2):
        try:
            deps = _run(["apt-cache", "depends", "--important", meta], log)
        except ImageError:
            deps = ""
        for line in deps.splitlines():
            words = line.split()
            if len(words) == 2 and words[0] == "Depends:" and words[1].startswith("linux-image-"):
                return words[1]
        if attempt == 1:
            _run(["apt-get", "update", "-q"], log)   # empty package lists on this machine?
    raise ImageError(f"cannot resolve {meta} to a kernel package")


def _download(package: str, dest: str, log) -> str:
    """apt-get download a package and unpack it into dest/<package>; nothing
    is installed on this machine."""
    debs = os.path.join(dest, "debs")
    os.makedirs(debs, exist_ok=True)
    _run(["apt-get", "download", package], log, cwd=debs)
    deb = sorted(glob.glob(os.path.join(debs, f"{package}_*.deb")))[-1]
    out = os.path.join(dest, package)
    _run(["dpkg-deb", "-x", deb, out], log)
    return out


def _initramfs(work: str, kernel_tree: str, busybox_tree: str, log) -> str:
    root = os.path.join(work, "initramfs")
    for d in ("bin", "dev", "proc", "sys", "lib/modules", "ro", "rw", "newroot"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy2(os.path.join(busybox_tree, "bin", "busybox"), os.path.join(root, "bin"))
    for name in RECIPE["modules"]:
        found = glob.glob(os.path.join(kernel_tree, "lib", "modules", "*", "kernel",
                                       "**", f"{name}.ko"), recursive=True)
        if not found:
            raise ImageError(f"kernel module {name}.ko not in {RECIPE['kernel_package']}")
        shutil.copy2(found[0], os.path.join(root, "lib", "modules"))
    init = os.path.join(root, "init")
    with open(init, "w") as fh:
        fh.write(RECIPE["init"])
    os.chmod(init, 0o755)
    files = subprocess.run(["find", "."], cwd=root, capture_output=True, text=True,
                           check=True).stdout
    cpio = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=root,
                          input=files.encode(), capture_output=True, check=True).stdout
    out = os.path.join(work, "initrd.img")
    with gzip.open(out, "wb", compresslevel=6) as fh:
        fh.write(cpio)
    log(f"  initramfs: {len(cpio) // 1024} KiB uncompressed")
    return out


def build(base: str | None = None, force: bool = False, log=print) -> GuestImage:
    """Build the current recipe's image unless it is already cached."""
    img = current(base)
    if img.complete() and not force:
        return img
    if os.geteuid() != 0:
        raise ImageError("building the guest image needs root (debootstrap)")
    for tool in ("debootstrap", "mksquashfs", "cpio", "apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise ImageError(f"{tool} missing: run sudo scripts/setup.sh")
    root = image_root(base)
    os.makedirs(root, exist_ok=True)
    work = tempfile.mkdtemp(prefix=f".build-{recipe_hash()}-", dir=root)
    t0 = time.monotonic()
    try:
        log(f"building guest image {recipe_hash()} in {work}")
        kernel_tree = _download(_kernel_package(RECIPE["kernel_package"], log), work, log)
        busybox_tree = _download(RECIPE["busybox_package"], work, log)
        vmlinuz = sorted(glob.glob(os.path.join(kernel_tree, "boot", "vmlinuz-*")))[-1]
        shutil.copy2(vmlinuz, os.path.join(work, "vmlinuz"))
        _initramfs(work, kernel_tree, busybox_tree, log)
        rootfs = os.path.join(work, "rootfs")
        _run(["debootstrap", f"--variant={RECIPE['variant']}",
              "--include=" + ",".join(RECIPE["packages"]),
              RECIPE["release"], rootfs, debian_mirror()], log)
        gi = os.path.join(rootfs, "usr", "local", "sbin", "ovct-guest-init")
        os.makedirs(os.path.dirname(gi), exist_ok=True)
        with open(gi, "w") as fh:
            fh.write(RECIPE["guest_init"])
        os.chmod(gi, 0o755)
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            shutil.rmtree(os.path.join(rootfs, junk), ignore_errors=True)
        _run(["mksquashfs", rootfs, os.path.join(work, "rootfs.squashfs"),
              "-comp", "zstd", "-noappend", "-quiet"], log)
        for d in ("rootfs", "initramfs", "debs", *[os.path.basename(kernel_tree),
                                                    os.path.basename(busybox_tree)]):
            shutil.rmtree(os.path.join(work, d), ignore_errors=True)
        with open(os.path.join(work, "recipe.json"), "w") as fh:
            json.dump({**RECIPE, "hash": recipe_hash(), "mirror": debian_mirror(),
                       "built": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                       "build_seconds": round(time.monotonic() - t0, 1)}, fh, indent=1)
        for f in os.listdir(work):
            os.chmod(os.path.join(work, f), 0o644)
        os.chmod(work, 0o755)
        if os.path.exists(img.path):
            shutil.rmtree(img.path)
        os.rename(work, img.path)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log(f"guest image ready in {time.monotonic() - t0:.0f} s: {img.path}")
    return img


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m testbed.guest_image")
    p.add_argument("action", choices=["build", "path", "hash"])
    p.add_argument("--dir", help=f"image directory (default {DEFAULT_DIR})")
    p.add_argument("--force", action="store_true", help="rebuild even if cached")
    args = p.parse_args(argv)
    if args.action == "hash":
        print(recipe_hash())
        return 0
    if args.action == "path":
        img = current(args.dir)
        print(img.path)
        return 0 if img.complete() else 1
    try:
        img = build(args.dir, force=args.force,
                    log=lambda m: print(m, file=sys.stderr, flush=True))
    except ImageError as exc:
        print(f"guest image: {exc}", file=sys.stderr)
        return 1
    print(img.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
