"""Container runtimes behind one interface (``driver.RuntimeDriver``): ``oci`` (crun/runc,
daemonless, a supervisor per container) and ``docker`` (Docker Engine API); image content,
layer unpacking, rootfs, cgroups and task networking."""
