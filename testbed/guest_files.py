"""What goes inside the guest image: its two init scripts.

Kept apart from the builder so the recipe hash covers them: changing a
script rebuilds the image.

Boot: QEMU loads the Debian cloud kernel and our busybox initramfs directly
(no bootloader).  ``/init`` loads the virtio/squashfs/overlay modules,
configures eth0 from the kernel command line that the libvirt domain
definition carries (``ovct.ip=10.0.0.101/8``), mounts the shared read-only
squashfs root (the report's NFS image) under a tmpfs overlay and switches
to it.  There ``ovct-guest-init`` starts a real VNC server (TigerVNC's Xvnc,
RFB on TCP 5900, no password) with a clock and an animation so the screen
changes continuously, like a working user's desktop.
"""

INITRAMFS_MODULES = (
    # in dependency order (checked against modinfo when the image is built)
    "virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev",
    "virtio_pci", "failover", "net_failover", "virtio_net", "virtio_blk",
    "squashfs", "overlay",
)

INIT = r"""#!/bin/busybox sh
# OVCT guest initramfs: modules, network from the kernel command line, then
# the shared read-only root under a tmpfs overlay.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev
for m in @MODULES@; do
  insmod /lib/modules/$m.ko || echo "ovct-init: insmod $m failed"
done
IP=""; NAME=guest
for a in $(cat /proc/cmdline); do
  case "$a" in
    ovct.ip=*) IP="${a#ovct.ip=}" ;;
    ovct.name=*) NAME="${a#ovct.name=}" ;;
  esac
done
hostname "$NAME"
i=0
while [ ! -b /dev/vda ] || [ ! -e /sys/class/net/eth0 ]; do
  i=$((i+1)); [ $i -gt 400 ] && break; sleep 0.05
done
ip link set lo up
ip link set eth0 up
[ -n "$IP" ] && ip addr add "$IP" dev eth0
echo "ovct-init: eth0 $IP"
# announce ourselves, as guests do on link-up: the controller learns where
# we are (QEMU announces us again with RARP after a live migration)
[ -n "$IP" ] && arping -U -c 3 -w 3 -I eth0 "${IP%/*}" >/dev/null 2>&1 &
mkdir -p /ro /rw /newroot
mount -t squashfs -o ro /dev/vda /ro || { echo "ovct-init: no root image"; exec sh; }
mount -t tmpfs -o size=48m,mode=0755 tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/ro,upperdir=/rw/upper,workdir=/rw/work /newroot
mount --move /dev /newroot/dev
umount /proc /sys
exec switch_root /newroot /usr/local/sbin/ovct-guest-init
"""

GUEST_INIT = r"""#!/bin/sh
# OVCT guest PID 1: a VNC desktop that keeps changing.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs -o mode=1777 tmpfs /tmp
GEOM=640x480; ANIM=0.1
for a in $(cat /proc/cmdline); do
  case "$a" in
    ovct.geometry=*) GEOM="${a#ovct.geometry=}" ;;
    ovct.anim=*) ANIM="${a#ovct.anim=}" ;;
  esac
done
start_desktop() {
  Xvnc :0 -SecurityTypes None -rfbport 5900 -geometry "$GEOM" -depth 16 \
       -AlwaysShared -nolisten tcp -desktop "$(hostname)" >/tmp/xvnc.log 2>&1 &
  XPID=$!
  i=0; while [ ! -S /tmp/.X11-unix/X0 ] && [ $i -lt 200 ]; do i=$((i+1)); sleep 0.05; done
  DISPLAY=:0 xclock -digital -update 1 -geometry +4+4 >/dev/null 2>&1 &
  DISPLAY=:0 ico -sleep "$ANIM" -geometry 300x300+40+60 >/dev/null 2>&1 &
  echo "ovct-guest: vnc ready on :5900" > /dev/console
}
start_desktop
while :; do
  sleep 2
  kill -0 "$XPID" 2>/dev/null || { echo "ovct-guest: Xvnc died, restarting" > /dev/console; start_desktop; }
done
"""


def init_script() -> str:
    return INIT.replace("@MODULES@", " ".join(INITRAMFS_MODULES))
