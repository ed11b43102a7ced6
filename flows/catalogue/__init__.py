"""The message catalogue by area, as (English, Chinese) pairs; ``flows.messages`` joins them into ``CATALOGUE``
and is the one place to look texts up."""
