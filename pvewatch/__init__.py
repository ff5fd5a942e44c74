"""pvewatch: watch Proxmox VE clusters and send every change where it is needed."""

__version__ = "0.1.0"
