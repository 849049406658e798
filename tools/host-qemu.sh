#!/bin/sh
# The QEMU a host name stands for, made ready to run on this machine.
#
#   tools/host-qemu.sh HOST DIR
#
# HOST is qemu-7.2 (Debian 12's own qemu-system-x86 and ovmf, installed by the
# Makefile's deps) or qemu-10.0 (Debian 13's, from a trixie root made here with
# debootstrap: about 40 s and 390 MB, made once and then reused).
# Leaves in DIR:
#   qemu-system-x86_64   what to run (for qemu-10.0 a wrapper that starts trixie's
#                        binary through trixie's own dynamic loader: no chroot,
#                        no mounts, nothing installed on this machine)
#   OVMF_CODE.fd, OVMF_VARS.fd   that host's firmware (symlinks)
# and prints the wrapper's version line.
set -eu
host=${1:?usage: host-qemu.sh HOST DIR}
dir=${2:?usage: host-qemu.sh HOST DIR}
mkdir -p "$dir"
dir=$(realpath "$dir")

case "$host" in
qemu-7.2)
	qemu=$(command -v qemu-system-x86_64) || {
		echo "host-qemu: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86 ovmf)" >&2
		exit 1
	}
	ln -sfn "$qemu" "$dir/qemu-system-x86_64"
	ln -sfn /usr/share/OVMF/OVMF_CODE_4M.fd "$dir/OVMF_CODE.fd"
	ln -sfn /usr/share/OVMF/OVMF_VARS_4M.fd "$dir/OVMF_VARS.fd"
	;;
qemu-10.0)
	root="$dir/root"
	if [ ! -x "$root/usr/bin/qemu-system-x86_64" ]; then
		if [ "$(id -u)" != 0 ]; then
			echo "host-qemu: making the Debian 13 root for $host needs root (debootstrap); run as root once" >&2
			exit 1
		fi
		command -v debootstrap >/dev/null || {
			echo "host-qemu: debootstrap is not installed (apt-get install debootstrap)" >&2
			exit 1
		}
		echo "host-qemu: making a Debian 13 (trixie) root in $root for $host (about a minute)" >&2
		rm -rf "$root.partial"
		debootstrap --variant=minbase --include=qemu-system-x86,ovmf trixie "$root.partial" \
			http://deb.debian.org/debian >"$dir/debootstrap.log" 2>&1 || {
			echo "host-qemu: debootstrap failed; the end of $dir/debootstrap.log:" >&2
			tail -n 20 "$dir/debootstrap.log" >&2
			exit 1
		}
		rm -rf "$root"
		mv "$root.partial" "$root"
	fi
	lib="$root/lib/x86_64-linux-gnu:$root/usr/lib/x86_64-linux-gnu"
	# exec keeps one process: the test harness's kill and wait reach QEMU itself.
	# QEMU finds its firmware and modules relative to its own executable, which
	# here is the loader, so both are named explicitly.
	cat >"$dir/qemu-system-x86_64.new" <<EOF
#!/bin/sh
# $host from $root (made by tools/host-qemu.sh)
QEMU_MODULE_DIR='$root/usr/lib/x86_64-linux-gnu/qemu' exec '$root/lib64/ld-linux-x86-64.so.2' \\
	--library-path '$lib' '$root/usr/bin/qemu-system-x86_64' \\
	-L '$root/usr/share/qemu' -L '$root/usr/share/seabios' "\$@"
EOF
	chmod +x "$dir/qemu-system-x86_64.new"
	mv "$dir/qemu-system-x86_64.new" "$dir/qemu-system-x86_64"
	ln -sfn "$root/usr/share/OVMF/OVMF_CODE_4M.fd" "$dir/OVMF_CODE.fd"
	ln -sfn "$root/usr/share/OVMF/OVMF_VARS_4M.fd" "$dir/OVMF_VARS.fd"
	;;
*)
	echo "host-qemu: unknown host '$host' (qemu-7.2 or qemu-10.0; QEMU=/path/to/qemu-system-x86_64 for any other)" >&2
	exit 1
	;;
esac
"$dir/qemu-system-x86_64" --version | head -n 1
