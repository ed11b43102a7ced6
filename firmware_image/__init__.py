"""Terminal firmware: MCUboot-format signed images, A/B slots on a simulated flash, the boot launcher, the update
agent and ``pos-fw``. Stands alone: stdlib, construct, cryptography and pyserial only (see ``.importlinter``).

The supervisor menu's API is ``firmware_image.slots``: ``describe(flash_path)``, ``confirm(flash_path)``,
``revert(flash_path)``. See ``docs/firmware.md`` and ``docs/protocols/flashing.md``.
"""
