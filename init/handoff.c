/*
 * handoff.c - phase 8: leaving migration mode (reboot, poweroff, kexec,
 * shell) and the rescue shell. PID 1 never returns from here.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/reboot.h>
#include <sys/wait.h>
#include <unistd.h>

#include "boot/boot.h"
#include "common/common.h"
#include "init.h"

void rescue_shell(const char *why)
{
	if (why)
		log_info("rescue shell: %s", why);
	result_line("FERRY RESCUE");
	for (;;) {
		pid_t pid = fork();
		int st;

		if (pid == 0) {
			int fd;

			setsid();
			fd = open("/dev/console", O_RDWR);
			if (fd >= 0) {
				ioctl(fd, TIOCSCTTY, 1);
				dup2(fd, 0);
				dup2(fd, 1);
				dup2(fd, 2);
				if (fd > 2)
					close(fd);
			}
			setenv("PS1", "ferry-rescue# ", 1);
			setenv("PATH", "/sbin:/bin:/usr/sbin:/usr/bin", 1);
			setenv("HOME", "/root", 1);
			setenv("TERM", "linux", 0);
			execl("/bin/sh", "-sh", (char *)NULL);
			_exit(127);
		}
		if (pid < 0) {
			sleep(1);
			continue;
		}
		/* Reap everything; respawn when the shell itself exits. */
		while (waitpid(-1, &st, 0) != pid)
			;
		log_info("rescue shell exited; starting a new one");
		sleep(1);
	}
}

/* Loads the migrated system's default kernel for kexec; says why not. */
static int kexec_migrated(const struct serve_config *sc)
{
	char specs[DISK_MAX][300], err[512];
	const char *v[DISK_MAX];
	size_t i;
	int r;

	if (!sc || sc->ndisks == 0) {
		log_error("kexec: no disks to load the migrated kernel from");
		return -ENODEV;
	}
	for (i = 0; i < sc->ndisks; i++) {
		snprintf(specs[i], sizeof(specs[i]), "%s=%s", sc->disks[i].name, sc->disks[i].path);
		v[i] = specs[i];
	}
	r = boot_kexec_load(v, sc->ndisks, err, sizeof(err));
	if (r)
		log_error("%s", err);
	else
		log_info("kexec: the migrated kernel is loaded; starting it");
	return r;
}

void hand_off(enum init_handoff h, const struct serve_config *sc)
{
	log_info("hand-off: %s", init_handoff_name(h));
	sync();
	switch (h) {
	case INIT_HANDOFF_SHELL:
		rescue_shell("hand-off to shell");
		break;
	case INIT_HANDOFF_KEXEC:
		if (kexec_migrated(sc) == 0) {
			result_line("FERRY HANDOFF kexec");
			reboot(RB_KEXEC);
		}
		log_error("kexec failed; rebooting instead");
		/* fall through */
	case INIT_HANDOFF_REBOOT:
		result_line("FERRY HANDOFF reboot");
		reboot(RB_AUTOBOOT);
		break;
	case INIT_HANDOFF_POWEROFF:
		result_line("FERRY HANDOFF poweroff");
		reboot(RB_POWER_OFF);
		break;
	}
	log_errno(-errno, "hand-off %s failed", init_handoff_name(h));
	rescue_shell("hand-off failed");
	for (;;)
		pause();
}
