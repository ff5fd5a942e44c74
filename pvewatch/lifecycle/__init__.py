"""The daemon's lifecycle: `daemon` (builds the components from config, schedules the
polls, starts and stops them in order; apscheduler lives there), `reload` (SIGHUP: the
config read again and applied without a restart), `systemd` (sd_notify: READY, RELOADING,
STOPPING, STATUS and the watchdog)."""
