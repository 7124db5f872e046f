#!/bin/sh
# Makes a minimal busybox root filesystem in DIR from Debian's busybox-static (no network needed
# beyond Debian's own packages): /bin/busybox, one link per applet, and the /etc files programs expect.
set -eu
dir=${1:?usage: busybox-rootfs.sh DIR}
bb=/bin/busybox
if ! [ -x "$bb" ] || ! "$bb" --list >/dev/null 2>&1; then
  echo "busybox-rootfs: $bb missing; install Debian's busybox-static (apt-get install busybox-static)" >&2
  exit 1
fi
if ldd "$bb" >/dev/null 2>&1; then
  echo "busybox-rootfs: $bb is dynamically linked; install busybox-static" >&2
  exit 1
fi
mkdir -p "$dir"
cd "$dir"
mkdir -p bin sbin usr/bin usr/sbin etc root tmp var/tmp proc sys dev home run
chmod 1777 tmp var/tmp
chmod 700 root
cp "$bb" bin/busybox
chmod 755 bin/busybox
for applet in $("$bb" --list); do
  [ "$applet" = busybox ] && continue
  [ -e "bin/$applet" ] || ln -s busybox "bin/$applet"
done
cat > etc/passwd <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > etc/group <<'G'
root:x:0:
daemon:x:1:
tty:x:5:
nogroup:x:65534:
G
echo 'hosts: files dns' > etc/nsswitch.conf
# Fixed times so the same busybox gives the same layer digest.
find . -exec touch -h -d @1700000000 {} +
