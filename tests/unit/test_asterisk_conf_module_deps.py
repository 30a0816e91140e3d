"""modules.conf loads what a real Asterisk 22 needs to dlopen each module it names.

With ``autoload = no`` a module whose code calls into another one (an "optional" module in
its MODULE_INFO, with no OPTIONAL_API in 22) fails to load unless that one is loaded too.
The table below is what a real Asterisk 22 (22 branch, 69535d4837) refused until the module
was added; see docs/asterisk.md, "Verified on a real Asterisk 22".
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dialer.asterisk_conf.render import render_site
from dialer.config import Settings, TrunkSettings

#: module -> modules it cannot load without (undefined symbols or ``.requires``).
LOAD_NEEDS: dict[str, tuple[str, ...]] = {
    "res_pjsip.so": (
        "res_pjproject.so",
        "res_sorcery_config.so",
        "res_sorcery_memory.so",
        "res_sorcery_astdb.so",
        "res_statsd.so",
        "res_geolocation.so",
    ),
    "res_pjsip_outbound_registration.so": ("res_pjsip.so", "res_statsd.so"),
    "res_pjsip_session.so": ("res_pjsip.so",),
    "chan_pjsip.so": ("res_pjsip.so", "res_pjsip_session.so", "res_pjsip_pubsub.so"),
    "res_agi.so": ("res_speech.so",),
    "app_mixmonitor.so": ("func_periodic_hook.so",),
    "func_periodic_hook.so": ("app_chanspy.so", "func_cut.so", "func_groupcount.so", "func_uri.so"),
}

SITES = {
    "default": Settings(),
    "registering trunk": Settings(
        asterisk={
            "trunks": (
                TrunkSettings(
                    host="sip.example.net", username="acct", secret="s3cret", registration=True
                ),
            )
        }
    ),
}


def _loaded(settings: Settings, folder: Path) -> list[str]:
    text = render_site(settings, folder).files["modules.conf"]
    return re.findall(r"^load\s*=\s*(\S+)\s*$", text, re.MULTILINE)


@pytest.mark.parametrize("site", sorted(SITES))
def test_every_loaded_module_has_what_it_needs_loaded(site: str, tmp_path: Path) -> None:
    loaded = _loaded(SITES[site], tmp_path)
    for module, needs in LOAD_NEEDS.items():
        if module in loaded:
            missing = [n for n in needs if n not in loaded]
            assert not missing, f"{module} does not load in Asterisk 22 without {missing}"


def test_the_table_covers_pjsip_and_mixmonitor(tmp_path: Path) -> None:
    loaded = _loaded(SITES["default"], tmp_path)
    assert {"res_pjsip.so", "chan_pjsip.so", "app_mixmonitor.so"} <= set(loaded)
