"""Terminal firmware: MCUboot-format signed images, A/B slots on a simulated flash, the boot launcher, the update
agent (POSFW1 and SMP) and ``pos-fw``. Stands alone: stdlib, construct, cryptography, pyserial, and the ``smp``
package (SMP message definitions, with its pydantic and cbor2, imported only at the first SMP request or by
``pos-fw … --port``) — never the rest of the product (``.importlinter``).

The supervisor menu's API is ``firmware_image.slots``: ``describe(flash_path)``, ``confirm(flash_path)``,
``revert(flash_path)``. See ``docs/firmware.md`` and ``docs/protocols/flashing.md``.
"""
