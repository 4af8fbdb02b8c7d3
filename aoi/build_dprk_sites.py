"""Build ``aoi/dprk_sites.geojson`` (and the site table in ``aoi/README.md``) from the data table
in this file.

    .venv/bin/python aoi/build_dprk_sites.py          # write both files
    .venv/bin/python aoi/build_dprk_sites.py --check  # exit 1 if either differs from the table

Every geometry is a box: a published point (or, for Kyohwaso 1, a position derived from a
published description), a size (published, or a judgement stated in ``box.built_as``) and a
corner grid (``box.corner_rounding_deg``) no finer than the source. Nothing here is digitised.
``tests/test_aoi_dprk.py`` checks that the shipped files equal this script's output and holds
every site to the library's rules. Stdlib + pyproj + shapely only; deterministic.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import shapely
from pyproj import Geod, Transformer
from shapely.geometry import Polygon

HERE = Path(__file__).resolve().parent
SITE_FILE = HERE / "dprk_sites.geojson"
README = HERE / "README.md"


GEOD = Geod(ellps="WGS84")
#: A control must keep at least this distance (km) from every watched site's boundary.
CONTROL_MIN_GAP_KM = 3.0

# -- sources, exactly as ../shared/real-data/sites/ (VERIFICATION.md and the two CSVs) give them.
# A prose citation says which of those files cites it and why it carries no URL.
HRNK14 = "hrnk.org/events/announcements-view.php?id=27"
WIKI14 = "https://talk.dob.jp/enwiki/w/index.php?oldid=829040852&title=Kaechon_internment_camp"
WIKI14_MIRROR = "https://hessslslslsls.azureedge.net/wiki/Kaechon_internment_camp"
NKEW14 = "https://www.nkeconwatch.com/2016/09/29/camp-14-updates-2016-3-30/"
NKEW15_2014 = "https://www.nkeconwatch.com/page/49/"
FREEKOREA15 = "http://freekorea.us/category/google-earth/page/3/"
NKEW15_2017 = "nkeconwatch.com/2017/04/"
WIKI15 = (
    "Wikipedia, Yodok camp article (378 km2; 'closed 2014'): cited as '(Wikipedia)' in "
    "VERIFICATION.md, no URL or revision recorded"
)
HRNK16 = "https://www.hrnk.org/events/announcements-view.php?id=28"
WIKI16 = "https://en.wikipedia.org/wiki/Hwasong_concentration_camp?oldid=752937374"
NKEW16 = "https://www.nkeconwatch.com/2013/07/19/kwanliso-no-16-imagery-update/"
NKEW16_AREA = (
    "NK Economic Watch (548 km2, 115 km perimeter): cited as '(NKEW)' in VERIFICATION.md, "
    "page not recorded"
)
WIKI18 = "https://talk.dob.jp/enwiki/w/index.php?oldid=913148162&title=Pukchang_concentration_camp"
DEWIKI18 = (
    "German Wikipedia, Pukchang camp article (78 km2): cited as '(de.wikipedia)' in "
    "VERIFICATION.md, no URL or revision recorded"
)
DAILYNK18 = (
    "Daily NK (Camp 18 ~2 km SE of Camp 14 across the Taedong): cited in VERIFICATION.md, "
    "no URL recorded"
)
WIKI22 = "https://en.wikipedia.org/?oldid=701047675&title=Hoeryong_concentration_camp"
HARVEST22 = (
    "harvest seen in October 2012, against the reported closure: noted in VERIFICATION.md, "
    "original source not recorded"
)
HRNK25 = "https://www.yumpu.com/en/document/view/59137273/asa-hrnk-camp25-update2-1/2"
HRNK25_KO = "http://www.hrnk.org/korean/events/announcements-view.php?id=83"
WIKI25 = (
    "Wikipedia, Camp 25 article (~500 x 500 m): cited as 'Wikipedia' in VERIFICATION.md, "
    "no URL or revision recorded"
)
HRNK25_GROWTH = (
    "HRNK Camp 25 reports (growth 72% in 2009-2010; guard posts 20 in 2003, 43 in 2010), as "
    "summarised in DOMAIN.md (reference figures), which does not name the HRNK document"
)
HRNK_KY1 = "https://www.hrnk.org/korean/events/announcements-view.php?id=71"
WIKI_KAECHON = "https://en.wikipedia.org/wiki/Kaechon"
WIKI_KY1 = (
    "Wikipedia (Kyohwaso No. 1 compound ~300 x 300 m): cited as '(Wikipedia)' in "
    "nk_sites_candidates.csv, article not recorded"
)
STOPNK_KY4 = "http://stopnkcrimes.org/bbs/board.php?bo_table=reports_north&wr_id=116"
HRNK_KY4 = "hrnk.org/events/announcements-view.php?id=62"
WIKI_KY4 = (
    "Wikipedia (Kyohwaso No. 4: main section 250 x 200 m, whole ~2 x 1.5 km fenced): cited as "
    "'(Wikipedia)' in VERIFICATION.md, no URL recorded"
)
HRNK_KY12 = (
    "https://vdocuments.pub/north-korea-north-korea-imagery-analysis-of-kyo-hwa-so-no-12-jng-ri-"
    "copyright.html"
)
WIKI_KY12 = (
    "Wikipedia (Kyohwaso No. 12: 350 x 150 m): cited as 'Wikipedia' in VERIFICATION.md, "
    "no URL recorded"
)
HRNK_KY12_ANNEX = (
    "HRNK Kyohwaso 12 report: women's annex ~0.6 ha built February-August 2009, as summarised "
    "in DOMAIN.md (reference figures)"
)
ALLSOURCE_NAMPO = "https://docslib.org/doc/10393325/monitoring-north-korean-coal-exports"
NORTH38_NAMPO = "38north.org/2019/04/supplychaincoal040119/"
GEM_CHONGJIN = "https://gem.wiki/Chongjin_Port"
GEM_RYONGCHON = "https://gem.wiki/Ryongchon_Port"
NORTH38_RYONGCHON = (
    "38 North / Stimson (Ryongchon: ~1.6 km downstream from Dandong, 14-bay storage building), "
    "as cited by GEM: noted in VERIFICATION.md, article URL not recorded"
)
GEM_SUNCHON = "https://www.gem.wiki/Sunchon_Port"
NORTH38_SUNCHON = (
    "38 North (Sunchon coal quay built July-October 2017): cited as '38 North' in "
    "VERIFICATION.md, article URL not recorded"
)
GEM_ANJU = "https://www.gem.wiki/Anju_Coal_Mining_Complex"
GEM_JIKDONG = "https://www.gem.wiki/February_8_Jikdong_Coal_Mine"


def gem_row(mine_id: str) -> str:
    """The GEM 2022 table row a mine's point and status come from (a file, not a URL)."""
    return (
        f"Global Energy Monitor, Global Coal Mine Tracker 2022, row {mine_id}, as copied in "
        "gcmt_2022_north_korea.csv"
    )


# -- sources found beyond ../shared/real-data/sites (search of stored public pages; the URL is
# the page actually read). ``coordinate`` is what the page prints, converted to decimal degrees.
ADDED_SOURCES: dict[str, dict[str, Any]] = {
    "https://globalenergymonitor.org/projects/global-coal-mine-tracker/frequently-asked-questions/?about": {
        "what": "GEM Global Coal Mine Tracker FAQ: for some mines 'only approximate location "
        "information could be found' (no distance is given for 'Approximate')",
        "coordinate": None,
    },
    "https://54e1ad4b4888.kfd.me/wiki/%E5%AD%9F%E5%B1%B1%E9%83%A1": {
        "what": "Chinese Wikipedia (mirror), Maengsan County: 39°40′00″N 126°35′00″E",
        "coordinate": (39.666667, 126.583333),
    },
    "https://iiab.me/kiwix/content/wikipedia_en_all_maxi_2023-10/A/Kangdong": {
        "what": "English Wikipedia (Kiwix copy, 2023-10), Kangdong County: 39°5′26.99″N "
        "126°8′12.01″E; Kyo-hwa-so No. 4 in the south-east of the county",
        "coordinate": (39.090831, 126.136669),
    },
    "https://a.osmarks.net/content/wikipedia_en_all_maxi_2020-08/A/Chunghwa_station": {
        "what": "English Wikipedia (Kiwix copy, 2020-08), Chunghwa station, Chunghwa-up, "
        "Chunghwa County (a suburban county of Pyongyang): 38°51′26″N 125°47′18″E",
        "coordinate": (38.857222, 125.788333),
    },
    "https://de.qwertyu.wiki/wiki/Kilchu": {
        "what": "English Wikipedia, Kilju County (machine-translated mirror): 40°57′43″N "
        "129°20′12″E; county seat Kilju town",
        "coordinate": (40.961944, 129.336667),
    },
    "https://hessslslslsls.azureedge.net/wiki/Kyongsong_County": {
        "what": "English Wikipedia (mirror), Kyongsong County: 41°39′N 129°29′E; "
        "administrative centre Kyongsong-up",
        "coordinate": (41.65, 129.483),
    },
    "https://en.wikipedia.org/wiki/Hoeryeong": {
        "what": "English Wikipedia, Hoeryong: 42°26′N 129°45′E; on the Tumen opposite China; "
        "Kwalliso No. 22 is 20 km from the city",
        "coordinate": (42.433, 129.75),
    },
    "http://the-uncensored-wiki.com:20171/2017-wikipedia_en_all_novid_2017-08/A/Nampo_Dam.html": {
        "what": "English Wikipedia (2017 copy), Nampo Dam / West Sea Barrage: 'The locks are "
        "at geographical coordinates 38°41′N 125°10′E'; built 1981-1986",
        "coordinate": (38.683, 125.167),
    },
    "https://wikiclassic.com/wiki/Wihwado": {
        "what": "English Wikipedia (mirror), Wihwa Island: 40°08′13″N 124°26′46″E; joint "
        "free-trade area with Hwanggumpyong agreed June 2011",
        "coordinate": (40.136944, 124.446111),
    },
    "https://en.wikipedia.org/wiki/Yodok_County": {
        "what": "English Wikipedia, Yodok County: 39.61111, 126.84444 (used in the "
        "kwanliso-15 extent note)",
        "coordinate": (39.61111, 126.84444),
    },
    "https://wikimili.com/en/Sunchon": {
        "what": "English Wikipedia (WikiMili copy), Sunchon: 39.41667, 125.93333; on the "
        "Taedong; Chik-dong is one of its neighbourhoods",
        "coordinate": (39.41667, 125.93333),
    },
    "https://rdxfbgrtj.blogspot.com/2019/02/tanchon.html": {
        "what": "English Wikipedia (copy), Tanchon, South Hamgyong: 40.458, 128.911",
        "coordinate": (40.458, 128.911),
    },
    "http://whc.unesco.org/pg_friendly_print.cfm?cid=326&id=1426": {
        "what": "UNESCO tentative list, 'Caves in Kujang Area' (Ryongmun Cavern), Kujang "
        "County: 39°51′ N / 126°06′ E",
        "coordinate": (39.85, 126.1),
    },
    "https://wikiwand.com/zh-sg/articles/%E7%90%83%E5%A0%B4%E9%83%A1": {
        "what": "Chinese Wikipedia (Wikiwand), Kujang County: lists a Ryongmun colliery line",
        "coordinate": None,
    },
    "https://russianwiki.com/wiki/%D0%A7%D0%BE%D0%BD%D1%87%D1%85%D0%BE%D0%BD": {
        "what": "Russian Wikipedia (mirror), Chonchon County, Chagang: 40°36′56″N 126°27′47″E",
        "coordinate": (40.615556, 126.463056),
    },
    "https://ewikibg.top/wiki/Kyongwon_County": {
        "what": "English Wikipedia (Bulgarian translation mirror), Kyongwon County, also known "
        "as Saebyol: 42°48′41″N 130°11′58″E",
        "coordinate": (42.81139, 130.19944),
    },
    "https://pinocchiopedia.com/wiki/Kaech%27%C5%8Fn": {
        "what": "English Wikipedia (copy), Kaech'on: Pongch'on-dong is one of the city's "
        "neighbourhoods",
        "coordinate": None,
    },
}
MAENGSAN, KANGDONG, CHUNGHWA, KILJU, KYONGSONG, HOERYONG, NAMPO_DAM, WIHWA = (
    "https://54e1ad4b4888.kfd.me/wiki/%E5%AD%9F%E5%B1%B1%E9%83%A1",
    "https://iiab.me/kiwix/content/wikipedia_en_all_maxi_2023-10/A/Kangdong",
    "https://a.osmarks.net/content/wikipedia_en_all_maxi_2020-08/A/Chunghwa_station",
    "https://de.qwertyu.wiki/wiki/Kilchu",
    "https://hessslslslsls.azureedge.net/wiki/Kyongsong_County",
    "https://en.wikipedia.org/wiki/Hoeryeong",
    "http://the-uncensored-wiki.com:20171/2017-wikipedia_en_all_novid_2017-08/A/Nampo_Dam.html",
    "https://wikiclassic.com/wiki/Wihwado",
)
GEM_FAQ = "https://globalenergymonitor.org/projects/global-coal-mine-tracker/frequently-asked-questions/?about"
YODOK_COUNTY = "https://en.wikipedia.org/wiki/Yodok_County"
SUNCHON_CITY = "https://wikimili.com/en/Sunchon"
TANCHON = "https://rdxfbgrtj.blogspot.com/2019/02/tanchon.html"
UNESCO_KUJANG = "http://whc.unesco.org/pg_friendly_print.cfm?cid=326&id=1426"
ZH_KUJANG = "https://wikiwand.com/zh-sg/articles/%E7%90%83%E5%A0%B4%E9%83%A1"
CHONCHON = "https://russianwiki.com/wiki/%D0%A7%D0%BE%D0%BD%D1%87%D1%85%D0%BE%D0%BD"
KYONGWON = "https://ewikibg.top/wiki/Kyongwon_County"
KAECHON_DONGS = "https://pinocchiopedia.com/wiki/Kaech%27%C5%8Fn"

#: Short labels for the README table.
SOURCE_LABELS = {
    WIKI14: "Wikipedia",
    NKEW14: "NKEW 2016",
    NKEW15_2017: "NKEW 2017",
    FREEKOREA15: "freekorea.us",
    WIKI16: "Wikipedia",
    NKEW16: "NKEW 2013",
    WIKI18: "Wikipedia",
    WIKI22: "Wikipedia",
    HRNK25: "HRNK 2016",
    HRNK_KY1: "derived from HRNK + Wikipedia",
    STOPNK_KY4: "HRNK via stopnkcrimes.org",
    HRNK_KY12: "HRNK 2016",
    ALLSOURCE_NAMPO: "AllSource 2018",
    GEM_SUNCHON: "GEM, approximate",
    GEM_RYONGCHON: "GEM, exact",
    GEM_CHONGJIN: "GEM, approximate",
    GEM_ANJU: "GEM 2024 wiki, approximate",
    GEM_JIKDONG: "GEM 2024 wiki, 'exact'",
    MAENGSAN: "zh.wikipedia",
    KANGDONG: "en.wikipedia",
    CHUNGHWA: "en.wikipedia",
    KILJU: "en.wikipedia",
    KYONGSONG: "en.wikipedia",
    HOERYONG: "en.wikipedia",
    NAMPO_DAM: "en.wikipedia",
    WIHWA: "en.wikipedia",
}


def claim(date: str, text: str, source: str) -> dict[str, str]:
    return {"date": date, "claim": text, "source": source}


def status(summary: str, disputed: bool, *claims: dict[str, str]) -> dict[str, Any]:
    return {"summary": summary, "disputed": disputed, "claims": list(claims)}


def point(lat: float, lon: float, meaning: str, source: str) -> dict[str, Any]:
    return {"lat": lat, "lon": lon, "meaning": meaning, "source": source}


def confidence(level: str, reason: str) -> dict[str, str]:
    return {"level": level, "reason": reason}


def areas(*values: dict[str, Any]) -> dict[str, Any]:
    kms = [v["km2"] for v in values]
    return {"min": min(kms), "max": max(kms), "values": list(values)}


def box(
    size_km: tuple[float, float],
    rounding: float,
    built_as: str,
    published: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A box spec: ``size_km`` is (east-west, north-south) in km, centred on the site's first
    point; ``published`` adds what the box claims to hold (published_dims_km, orientation)."""
    return {
        "size_km": size_km,
        "corner_rounding_deg": rounding,
        "built_as": built_as,
        **(published or {}),
    }


# -- the sites. Kwanliso 14, 15 and 16 and their focus areas are the first site file's seven
# sites (ids used by configs/); their text is unchanged but for kind, scope and the notes that
# now point at sites added with them.
EXISTING_KWANLISO: list[dict[str, Any]] = [
    {
        "id": "kwanliso-14",
        "name": "Kwanliso 14, Kaechon: whole-camp indicative box",
        "kind": "kwanliso",
        "source": "HRNK/AllSource press release 2015-11-30 "
        "(hrnk.org/events/announcements-view.php?id=27): irregular area ~14 x 21 km, ~19 km "
        "SE of Kaechon; centre point: Wikipedia 'Kaechon internment camp' "
        "(https://talk.dob.jp/enwiki/w/index.php?oldid=829040852&title=Kaechon_internment_camp)",
        "scope": "whole-site",
        "aliases": [
            "Camp 14",
            "Kwan-li-so No. 14",
            "Kwanliso 14 (Kaechon)",
            "Kaechon internment camp",
            "Kaechon political prison camp",
        ],
        "status": {
            "summary": "operating as of the latest cited imagery (2016-03-30); no cited source "
            "reports closure",
            "disputed": False,
            "claims": [
                {
                    "date": "2015-11-30",
                    "claim": "operating; prisoner population estimated ~15,000 (imagery Dec "
                    "2002 - Dec 2014)",
                    "source": HRNK14,
                },
                {
                    "date": "2016-03-30",
                    "claim": "facility upgrades (new and renovated firing ranges, renovated "
                    "fish farms); 'will probably not be closed for the foreseeable "
                    "future'",
                    "source": NKEW14,
                },
            ],
        },
        "sources": [
            HRNK14,
            WIKI14_MIRROR,
            WIKI14,
            NKEW14,
        ],
        "points": [
            {
                "lat": 39.571086,
                "lon": 126.055466,
                "meaning": "Wikipedia infobox point; centre of this box",
                "source": WIKI14,
            },
            {
                "lat": 39.574979,
                "lon": 126.04786,
                "meaning": "firing range near the camp headquarters (imagery 2016-03-30)",
                "source": NKEW14,
            },
            {
                "lat": 39.5593,
                "lon": 126.013005,
                "meaning": "firing range near the camp entrance, western perimeter (imagery "
                "2016-03-30)",
                "source": NKEW14,
            },
        ],
        "location_confidence": {
            "level": "high",
            "reason": "Wikipedia point and NKEW 2016 HQ point agree within 0.78 "
            "km, and the Wikipedia point lies ~19 km SE of Kaechon city "
            "as HRNK 2015 states (Wikipedia's own coordinate source is "
            "unknown). This rates the position only: the box edges are "
            "indicative (see extent_note).",
        },
        "published_area_km2": {
            "min": 155,
            "max": 155,
            "values": [{"km2": 155, "source": WIKI14}],
        },
        "extent_note": "Sources disagree on size: HRNK 2015 says the camp 'occupies an irregularly "
        "shaped area that measures approximately 14 by 21 kilometers' (294 km2 if read "
        "as a rectangle), Wikipedia says ~155 km2. Read together, the camp fills about "
        "half of its 14 x 21 km envelope; neither figure is resolved here. This box "
        "(17.8 x 18.3 km, ~306 km2 in UTM 52N) has the envelope's area, not the camp's, "
        "and is only indicative: HRNK does not say which side is 14 km, and the box is "
        "centred on the Wikipedia point, which is not a published centroid. NKEW 2016 "
        "puts the entrance and two firing ranges on the western perimeter (lon "
        "~126.013-126.035), so the camp probably lies mostly east of this centre and "
        "the box overshoots to the west. The box also takes in the Taedong river and "
        "Kwanliso 18 / the Tukchang coal area south of it (Camp 18 point 39.546164, "
        "126.063223 is inside): footprint change there must not be attributed to Camp "
        "14. The auxiliary prison area NKEW 2016 reports on the camp's north-west "
        "border (first noticed January 2013) may fall partly outside; DOMAIN.md lists a "
        "14.5 km2 Ch'oma-bong restricted area next to Camp 14 (whether it is the same "
        "area is not settled by the cited sources). Corners are on a 0.01 deg (~1 km) "
        "grid because the source extent is only known to ~1 km. Kwanliso 18 has its "
        "own box (kwanliso-18), which overlaps this one.",
        "geometry_basis": "approximate box from a published extent centred on a published point (HRNK "
        "14 x 21 km envelope as an equal-area square, centred on the Wikipedia "
        "point); corners rounded to 0.01 deg (~1 km), the precision of the source",
        "box": box(
            (math.sqrt(294), math.sqrt(294)),
            0.01,
            "square of side sqrt(14 x 21) = 17.1 km (the published dimensions' area, no invented "
            "orientation), centred on the Wikipedia point, corners rounded to the nearest 0.01 deg",
            {
                "published_dims_km": [14, 21],
                "orientation": "not published (HRNK gives '14 by 21 km' only)",
            },
        ),
    },
    {
        "id": "kwanliso-14-hq",
        "name": "Kwanliso 14, Kaechon: headquarters area (focus)",
        "kind": "kwanliso",
        "source": "NK Economic Watch 2016-09-29, 'Camp 14 updates (2016-3-30)': firing range near the "
        "camp headquarters at 39.574979, 126.047860 "
        "(https://www.nkeconwatch.com/2016/09/29/camp-14-updates-2016-3-30/)",
        "scope": "focus-area",
        "parent": "kwanliso-14",
        "aliases": ["Camp 14 HQ", "Kwanliso 14 HQ area"],
        "status": {
            "summary": "in use as of imagery 2016-03-30 (new firing range built between "
            "2013-10-01 and 2016-03-30)",
            "disputed": False,
            "claims": [
                {
                    "date": "2016-03-30",
                    "claim": "new firing range near the camp headquarters",
                    "source": NKEW14,
                }
            ],
        },
        "sources": [NKEW14],
        "points": [
            {
                "lat": 39.574979,
                "lon": 126.04786,
                "meaning": "firing range near the camp headquarters; centre of this box",
                "source": NKEW14,
            }
        ],
        "location_confidence": {
            "level": "high",
            "reason": "point read by NKEW off dated imagery (2016-03-30) and 0.78 "
            "km from the independent-looking Wikipedia camp point; the "
            "CSV rates the point medium-high because it is one "
            "analyst's, and it marks a firing range 'near' the HQ, not "
            "the HQ itself: the 2 km box allows for that.",
        },
        "extent_note": "No published outline of the HQ compound: the 2 x 2 km size is a judgement (the "
        "HQ is 'near' the firing range; NKEW gives the range as ~240 m long) and is not "
        "a boundary. Box ~2.0 x 2.1 km, ~4.0 km2. The entrance firing range (39.559300, "
        "126.013005) is 3.5 km WSW and outside this box.",
        "geometry_basis": "2 x 2 km box around a published interior point (NKEW 2016 HQ firing range); "
        "size is a judgement, no published compound outline; corners rounded to "
        "0.001 deg (~100 m)",
        "box": box(
            (2, 2),
            0.001,
            "2 x 2 km box centred on the published point, corners rounded to the nearest 0.001 deg",
            {},
        ),
    },
    {
        "id": "kwanliso-15",
        "name": "Kwanliso 15, Yodok: whole-camp indicative box",
        "kind": "kwanliso",
        "source": "NK Economic Watch 2014-12-09 (https://www.nkeconwatch.com/page/49/): camp over 22 "
        "km N-S and over 20 km E-W; centre point: NKEW 2017 Total Control Zone housing "
        "(nkeconwatch.com/2017/04/)",
        "scope": "whole-site",
        "aliases": [
            "Camp 15",
            "Yodok",
            "Kwanliso No. 15",
            "Kwanliso 15 (Yodok)",
            "Yodok political prison camp",
        ],
        "status": {
            "summary": "disputed: reported closed 2014 (Wikipedia) vs housing largely razed but "
            "security/administrative infrastructure intact, 'too soon to say the "
            "camp is closed' (NKEW 2017)",
            "disputed": True,
            "claims": [
                {
                    "date": "2014",
                    "claim": "closed",
                    "source": WIKI15,
                },
                {
                    "date": "2014-10",
                    "claim": "'Revolutionizing Zone' torn down as of October 2014 "
                    "(HRNK/Bermudez, September 2015, as reported by NKEW)",
                    "source": NKEW15_2017,
                },
                {
                    "date": "2017-02-19",
                    "claim": "38 housing units in the Total Control Zone razed between "
                    "2016-06-02 and 2017-02-19; seven buildings remain",
                    "source": NKEW15_2017,
                },
                {
                    "date": "2017-09-19",
                    "claim": "vast majority of housing demolished, deteriorated or "
                    "uninhabited; only minor changes to security and "
                    "administrative infrastructure; 'too soon to say the camp is "
                    "closed'",
                    "source": NKEW15_2017,
                },
            ],
        },
        "sources": [
            NKEW15_2014,
            FREEKOREA15,
            NKEW15_2017,
            WIKI15,
            YODOK_COUNTY,
        ],
        "points": [
            {
                "lat": 39.699346,
                "lon": 126.849473,
                "meaning": "housing in the 'Total Control Zone' (imagery 2016-06-02 / 2017-02-19); "
                "centre of this box",
                "source": NKEW15_2017,
            },
            {
                "lat": 39.713,
                "lon": 126.895,
                "meaning": "one district of the camp (Pyongchang-ri section), not the camp centre",
                "source": FREEKOREA15,
            },
        ],
        "location_confidence": {
            "level": "low",
            "reason": "both published points are inside the camp (medium per "
            "VERIFICATION.md) but neither is its centre: they are 4.18 "
            "km apart and mark sections; the main gate is only described "
            "(south side, just north of Kuup-ri, ~6 km from Yodok town) "
            "with no coordinate. A box centred on a section point may be "
            "off by several km in any direction.",
        },
        "published_area_km2": {
            "min": 378,
            "max": 378,
            "values": [
                {
                    "km2": 378,
                    "source": WIKI15,
                }
            ],
        },
        "extent_note": "NKEW 2014 gives 'over 22 km from north to south and over 20 km from east to "
        "west' (>= 440 km2 as an envelope); Wikipedia gives 378 km2 for the camp. Both "
        "can hold (an irregular camp in a larger envelope), but the NKEW figures are "
        "lower bounds, so the camp may reach beyond this box. Box ~21.1 x 22.7 km, ~457 "
        "km2 (UTM 52N). Only indicative: it is centred on the Total Control Zone "
        "housing point, a section of the camp, not a published centroid; the "
        "freekorea.us Pyongchang-ri point (4.18 km ENE) is inside. Corners on a 0.01 "
        "deg (~1 km) grid because the extent is known only to ~1 km. The status is "
        "disputed (see status): a footprint decline here from 2014 on may be "
        "demolition, not an artefact. The box also holds the English Wikipedia "
        "coordinate of Yodok County (39.61111, 126.84444), 1.2 km inside its southern "
        "edge: if that marks Yodok town, change there is town change, not camp change.",
        "geometry_basis": "approximate box from a published extent centred on a published point (NKEW "
        ">22 x >20 km, centred on the NKEW 2017 housing point); corners rounded to "
        "0.01 deg (~1 km), the precision of the source",
        "box": box(
            (20, 22),
            0.01,
            "22 km N-S x 20 km E-W box centred on the NKEW 2017 housing point, corners rounded to "
            "the nearest 0.01 deg",
            {
                "published_dims_km": [22, 20],
                "orientation": "22 km north-south, 20 km east-west, both lower bounds ('over')",
            },
        ),
    },
    {
        "id": "kwanliso-15-housing",
        "name": "Kwanliso 15, Yodok: Total Control Zone housing (focus)",
        "kind": "kwanliso",
        "source": "NK Economic Watch 2017-04-27, 'Recent changes at Prison Camp 15 (Yodok)': housing "
        "in the 'Total Control Zone' at 39.699346, 126.849473 (nkeconwatch.com/2017/04/)",
        "scope": "focus-area",
        "parent": "kwanliso-15",
        "aliases": ["Yodok Total Control Zone housing", "Camp 15 housing"],
        "status": {
            "summary": "housing largely razed 2016-2017; seven buildings remained in February 2017",
            "disputed": True,
            "claims": [
                {
                    "date": "2017-02-19",
                    "claim": "38 housing units razed between 2016-06-02 and 2017-02-19; "
                    "seven buildings remain",
                    "source": NKEW15_2017,
                },
                {
                    "date": "2014",
                    "claim": "camp closed",
                    "source": WIKI15,
                },
            ],
        },
        "sources": [NKEW15_2017, WIKI15],
        "points": [
            {
                "lat": 39.699346,
                "lon": 126.849473,
                "meaning": "housing in the 'Total Control Zone'; centre of this box",
                "source": NKEW15_2017,
            }
        ],
        "location_confidence": {
            "level": "medium",
            "reason": "single-analyst point (NKEW) read off dated imagery "
            "(2016-06-02, 2017-02-19); inside the camp per "
            "VERIFICATION.md. The 4.18 km to the freekorea.us point is "
            "not a disagreement: that point marks another section.",
        },
        "extent_note": "No published outline of the housing area: the 2 x 2 km size is a judgement, "
        "not a boundary. Box ~2.0 x 2.0 km, ~3.9 km2. Expected signal is demolition "
        "(2016-2017), i.e. footprint loss, not growth.",
        "geometry_basis": "2 x 2 km box around a published interior point (NKEW 2017 housing); size is "
        "a judgement, no published compound outline; corners rounded to 0.001 deg "
        "(~100 m)",
        "box": box(
            (2, 2),
            0.001,
            "2 x 2 km box centred on the published point, corners rounded to the nearest 0.001 deg",
            {},
        ),
    },
    {
        "id": "kwanliso-16",
        "name": "Kwanliso 16, Hwasong: whole-camp indicative box",
        "kind": "kwanliso",
        "source": "HRNK press release (https://www.hrnk.org/events/announcements-view.php?id=28): 539 "
        "km2, 119 km perimeter, ~30 x 35 km, only the lower third fenced; centre point: "
        "Wikipedia 'Hwasong concentration camp' "
        "(https://en.wikipedia.org/wiki/Hwasong_concentration_camp?oldid=752937374)",
        "scope": "whole-site",
        "aliases": [
            "Camp 16",
            "Kwan-li-so No. 16",
            "Kwanliso 16 (Hwasong)",
            "Hwasong concentration camp",
            "Hwasong political prison camp",
            "Myonggan (formerly Hwasong) county camp",
        ],
        "status": {
            "summary": "operating as of the latest cited imagery (2013-03-21); no cited source "
            "reports closure",
            "disputed": False,
            "claims": [
                {
                    "date": "2013-02-12",
                    "claim": "housing in Area 1 grew from 43 to 51 units between 2011-06-19 "
                    "and 2013-02-12",
                    "source": NKEW16,
                },
                {
                    "date": "2013-03-21",
                    "claim": "new non-residential construction (purpose unknown; suspected "
                    "fishery/agriculture) started between 2010-08-14 and "
                    "2013-03-21",
                    "source": NKEW16,
                },
            ],
        },
        "sources": [
            HRNK16,
            WIKI16,
            NKEW16,
            NKEW16_AREA,
        ],
        "points": [
            {
                "lat": 41.268505,
                "lon": 129.391211,
                "meaning": "Wikipedia point; centre of this box",
                "source": WIKI16,
            },
            {
                "lat": 41.305616,
                "lon": 129.420913,
                "meaning": "interior: new non-residential construction, NKEW 'New Facilities' Area "
                "1",
                "source": NKEW16,
            },
            {
                "lat": 41.317569,
                "lon": 129.336758,
                "meaning": "interior: housing, NKEW Area 1",
                "source": NKEW16,
            },
        ],
        "location_confidence": {
            "level": "medium",
            "reason": "Wikipedia point (own coordinate source unknown); the NKEW "
            "2013 interior points are 4.8 and 7.1 km from it, consistent "
            "with a ~30 x 35 km camp but not confirming its centre. "
            "Rates the position only; the box edges are indicative (see "
            "extent_note).",
        },
        "published_area_km2": {
            "min": 539,
            "max": 549,
            "values": [
                {
                    "km2": 539,
                    "perimeter_km": 119,
                    "source": HRNK16,
                },
                {
                    "km2": 548,
                    "perimeter_km": 115,
                    "source": NKEW16_AREA,
                },
                {
                    "km2": 549,
                    "source": WIKI16,
                },
            ],
        },
        "extent_note": "Sources disagree: HRNK 539 km2 with a 119 km perimeter, NKEW 548 km2 with 115 "
        "km, Wikipedia 549 km2; HRNK also gives ~30 x 35 km (1,050 km2 as an envelope) "
        "and says only the lower third is fenced. None is resolved here. This box (32.0 "
        "x 32.3 km, ~1,025 km2 in UTM 52N) has the envelope's area, about twice the "
        "camp's, and is only indicative: HRNK does not say which side is 35 km, and the "
        "box is centred on the Wikipedia point, not a published centroid. Wikipedia "
        "places the western border at Mantapsan and the Punggye-ri nuclear test site "
        "2.5 km west of the camp: the box may take in test-site activity, which must "
        "not be attributed to the camp. Corners on a 0.01 deg (~1 km) grid because the "
        "extent is known only to ~1 km. No source places the fenced lower third, so it "
        "has no focus area of its own.",
        "geometry_basis": "approximate box from a published extent centred on a published point (HRNK "
        "~30 x 35 km envelope as an equal-area square, centred on the Wikipedia "
        "point); corners rounded to 0.01 deg (~1 km), the precision of the source",
        "box": box(
            (math.sqrt(1050), math.sqrt(1050)),
            0.01,
            "square of side sqrt(30 x 35) = 32.4 km (the published dimensions' area, no invented "
            "orientation), centred on the Wikipedia point, corners rounded to the nearest 0.01 deg",
            {
                "published_dims_km": [30, 35],
                "orientation": "not published (HRNK gives '~30 x 35 km' only)",
            },
        ),
    },
    {
        "id": "kwanliso-16-housing",
        "name": "Kwanliso 16, Hwasong: housing area 1 (focus)",
        "kind": "kwanliso",
        "source": "NK Economic Watch 2013-07-19, 'Kwanliso No. 16 imagery update': housing Area 1 at "
        "41.317569, 129.336758 "
        "(https://www.nkeconwatch.com/2013/07/19/kwanliso-no-16-imagery-update/)",
        "scope": "focus-area",
        "parent": "kwanliso-16",
        "aliases": ["Camp 16 housing area 1", "Kwanliso 16 housing area 1"],
        "status": {
            "summary": "housing growing as of imagery 2013-02-12 (43 -> 51 units since 2011-06-19)",
            "disputed": False,
            "claims": [
                {
                    "date": "2013-02-12",
                    "claim": "housing units increased 18% from 43 to 51 between 2011-06-19 "
                    "and 2013-02-12",
                    "source": NKEW16,
                },
                {
                    "date": "2010-06-12",
                    "claim": "nearby Area 2 (41.313945, 129.345299): 14 units replaced by "
                    "11 between 2008-06-10 and 2010-06-12; six added by 2011-06-19",
                    "source": NKEW16,
                },
            ],
        },
        "sources": [NKEW16],
        "points": [
            {
                "lat": 41.317569,
                "lon": 129.336758,
                "meaning": "housing, NKEW Area 1; centre of this box",
                "source": NKEW16,
            },
            {
                "lat": 41.313945,
                "lon": 129.345299,
                "meaning": "housing, NKEW Area 2 (0.8 km ESE, inside this box)",
                "source": NKEW16,
            },
        ],
        "location_confidence": {
            "level": "medium",
            "reason": "single-analyst point (NKEW) read off dated imagery "
            "(2011-2013); the CSV rates it medium-high, VERIFICATION.md "
            "medium for the camp. The imagery is from 2013: buildings "
            "may have changed since.",
        },
        "extent_note": "No published outline: the 2 x 2 km size is a judgement, chosen to hold NKEW "
        "housing Areas 1 and 2 (0.8 km apart) and the building at 41.309849, "
        "129.347631. Box ~2.0 x 2.0 km, ~4.0 km2. NKEW gives building sizes (~16 x 7 "
        "m): single buildings are below a 10 m pixel's reliable size.",
        "geometry_basis": "2 x 2 km box around a published interior point (NKEW 2013 housing Area 1); "
        "size is a judgement, no published compound outline; corners rounded to "
        "0.001 deg (~100 m)",
        "box": box(
            (2, 2),
            0.001,
            "2 x 2 km box centred on the published point, corners rounded to the nearest 0.001 deg",
            {},
        ),
    },
    {
        "id": "kwanliso-16-new-facility",
        "name": "Kwanliso 16, Hwasong: new non-residential facility (focus)",
        "kind": "kwanliso",
        "source": "NK Economic Watch 2013-07-19, 'Kwanliso No. 16 imagery update': new facility ('New "
        "Facilities' Area 1) at 41.305616, 129.420913 "
        "(https://www.nkeconwatch.com/2013/07/19/kwanliso-no-16-imagery-update/)",
        "scope": "focus-area",
        "parent": "kwanliso-16",
        "aliases": ["Camp 16 new facility", "Kwanliso 16 interior point 41.305616, 129.420913"],
        "status": {
            "summary": "under construction between 2010-08-14 and 2013-03-21; purpose unknown "
            "(NKEW suspects a fishery/agricultural site)",
            "disputed": False,
            "claims": [
                {
                    "date": "2013-03-21",
                    "claim": "new non-residential construction inside the perimeter; "
                    "purpose unknown, suspected fishery and agricultural site",
                    "source": NKEW16,
                }
            ],
        },
        "sources": [NKEW16],
        "points": [
            {
                "lat": 41.305616,
                "lon": 129.420913,
                "meaning": "new non-residential construction; centre of this box",
                "source": NKEW16,
            }
        ],
        "location_confidence": {
            "level": "medium",
            "reason": "single-analyst point (NKEW) read off dated imagery "
            "(2010-2013); 4.8 km from the Wikipedia camp point; purpose "
            "of the site unknown to the source.",
        },
        "extent_note": "No published outline: the 2 x 2 km size is a judgement, not a boundary. Box "
        "~2.0 x 2.0 km, ~4.0 km2. The source does not know the site's purpose; do not "
        "label it.",
        "geometry_basis": "2 x 2 km box around a published interior point (NKEW 2013 new facility); "
        "size is a judgement, no published compound outline; corners rounded to "
        "0.001 deg (~100 m)",
        "box": box(
            (2, 2),
            0.001,
            "2 x 2 km box centred on the published point, corners rounded to the nearest 0.001 deg",
            {},
        ),
    },
]

# README table cells (short; the full reasons are in the properties) for the first seven sites.
for _spec, _readme in zip(
    EXISTING_KWANLISO,
    [
        {
            "extent": "~14 x 21 km (HRNK 2015) vs ~155 km2 (Wikipedia)",
            "conf": "Wikipedia point 0.78 km from NKEW's HQ point; fits HRNK's '19 km SE of Kaechon'",
            "basis": "box: equal-area square of the HRNK envelope",
        },
        {
            "extent": "none published",
            "conf": "read off dated imagery (2016-03-30), 0.78 km from the camp point",
            "basis": "2 x 2 km around the point (judgement)",
        },
        {
            "extent": ">22 x >20 km (NKEW 2014) vs 378 km2 (Wikipedia)",
            "conf": "both points mark sections, not the centre",
            "basis": "box: 22 x 20 km on the housing point",
        },
        {
            "extent": "none published",
            "conf": "one analyst, dated imagery (2016-2017)",
            "basis": "2 x 2 km around the point (judgement)",
        },
        {
            "extent": "539/548/549 km2, 115-119 km perimeter, ~30 x 35 km (HRNK, NKEW, Wikipedia)",
            "conf": "Wikipedia point of unknown origin; NKEW points 4.8/7.1 km away fit",
            "basis": "box: equal-area square of the HRNK envelope",
        },
        {
            "extent": "none published",
            "conf": "one analyst, imagery 2011-2013",
            "basis": "2 x 2 km around the point (judgement)",
        },
        {
            "extent": "none published",
            "conf": "one analyst, imagery 2010-2013; purpose unknown",
            "basis": "2 x 2 km around the point (judgement)",
        },
    ],
    strict=True,
):
    _spec["readme"] = _readme

NEW_KWANLISO: list[dict[str, Any]] = [
    {
        "id": "kwanliso-18",
        "name": "Kwanliso 18, Pukchang (Tukchang): whole-camp indicative box",
        "kind": "kwanliso",
        "source": (
            "Wikipedia 'Pukchang concentration camp', revision 913148162 "
            f"({WIKI18}): point 39.546164, 126.063223, ~73 km2, the Taedong river forms the "
            "camp's northern boundary; 78 km2 per German Wikipedia (cited in VERIFICATION.md)"
        ),
        "scope": "whole-site",
        "aliases": [
            "Camp 18",
            "Kwan-li-so No. 18",
            "Kwanliso 18 (Pukchang)",
            "Pukchang concentration camp",
            "Bukchang concentration camp",
            "Tukchang concentration camp",
        ],
        "status": status(
            "unclear: part of the camp was returned to society in 1995 as the Tukchang Coal Mine "
            "Complex and the camp was reported dismantled in 2006 (both as listed in "
            "nk_sites_candidates.csv from Wikipedia), while the cited 2019 Wikipedia revision "
            "still describes an operating labour camp; no cited imagery report settles it",
            True,
            claim(
                "1995",
                "part of the camp returned to society as the Tukchang Coal Mine Complex",
                WIKI18,
            ),
            claim("2006", "reported dismantled", WIKI18),
            claim(
                "2019-08-30",
                "described in the present tense as a labour camp of ~73 km2 run by the Interior "
                "Ministry, the Taedong forming its northern boundary",
                WIKI18,
            ),
        ),
        "sources": [WIKI18, DEWIKI18, DAILYNK18],
        "points": [
            point(39.546164, 126.063223, "Wikipedia infobox point; centre of this box", WIKI18)
        ],
        "location_confidence": confidence(
            "low",
            "a single Wikipedia point whose own source is unknown (VERIFICATION.md: low-medium; "
            "this file has no in-between level and rounds down). It fits the descriptions (2.8 km "
            "SSE of the Camp 14 point, across the Taedong; Daily NK: ~2 km SE of Camp 14 across "
            "the river), but nothing says where in the camp it lies.",
        ),
        "published_area_km2": areas({"km2": 73, "source": WIKI18}, {"km2": 78, "source": DEWIKI18}),
        "box": box(
            (2 * math.sqrt(78), 2 * math.sqrt(78)),
            0.01,
            "square of side 2 x sqrt(78) = 17.7 km, centred on the Wikipedia point: the Taedong "
            "is the camp's northern boundary and the point lies near it, so the camp extends "
            "south of the point, and a box centred on the point must reach a whole camp width "
            "(sqrt(78) = 8.8 km for a compact camp of the larger published area) to the south to "
            "hold it. Corners rounded to the nearest 0.01 deg",
            {"orientation": "no dimensions published, only areas (73 and 78 km2)"},
        ),
        "extent_note": (
            "Sources disagree on the area: ~73 km2 (English Wikipedia, revision 913148162) vs 78 "
            "km2 (German Wikipedia, per VERIFICATION.md). No outline or dimensions are published, "
            "so the box is built to the larger figure. Wikipedia says the Taedong forms the "
            "camp's northern boundary and the camp includes the mountains south of the river; "
            "the point is 2.8 km SSE of the Camp 14 point across the river, so the camp should "
            "lie mostly south of the point, and the northern part of this box is the river and "
            "Kwanliso 14 (kwanliso-14 overlaps it): change there must not be attributed to Camp "
            "18. Part of the camp was returned in 1995 as the Tukchang Coal Mine Complex; no "
            "source gives that part's position, so it has no focus area, and the Tukchang mines "
            "have no polygon of their own (README, deliberately absent). The box is indicative "
            "only: it is centred on a point of unknown meaning. Corners on a 0.01 deg (~1 km) "
            "grid because nothing about the extent is known more finely."
        ),
        "geometry_basis": (
            "approximate box from a published area centred on a published point (Wikipedia "
            "point; larger published area 78 km2, 2 x sqrt(78) km a side because the camp lies "
            "south of the point); corners rounded to 0.01 deg (~1 km)"
        ),
        "readme": {
            "extent": "73 km2 (en.wikipedia) vs 78 km2 (de.wikipedia); Taedong is the northern boundary",
            "conf": "single Wikipedia point of unknown origin; fits Daily NK's description",
            "basis": "box: 2 x sqrt(78) km square centred on the point",
        },
    },
    {
        "id": "kwanliso-22",
        "name": "Kwanliso 22, Hoeryong: whole-camp indicative box",
        "kind": "kwanliso",
        "source": (
            f"Wikipedia 'Hoeryong concentration camp', revision 701047675 ({WIKI22}): point "
            "42.537967, 129.935517, ~225 km2; status disputed (VERIFICATION.md)"
        ),
        "scope": "whole-site",
        "aliases": [
            "Camp 22",
            "Kwan-li-so No. 22",
            "Kwanliso 22 (Hoeryong)",
            "Hoeryong concentration camp",
        ],
        "status": status(
            "disputed: reported closed about 2012 (Wikipedia, as listed in "
            "nk_sites_candidates.csv) vs a harvest seen in October 2012 (noted in "
            "VERIFICATION.md); a footprint decline from 2012 on may be the closure, not an "
            "artefact",
            True,
            claim("2012", "closed (about 2012)", WIKI22),
            claim("2012-10", "harvest seen in the camp, cited against the closure", HARVEST22),
        ),
        "sources": [WIKI22, HARVEST22, HOERYONG],
        "points": [
            point(42.537967, 129.935517, "Wikipedia infobox point; centre of this box", WIKI22)
        ],
        "location_confidence": confidence(
            "low",
            "a single Wikipedia point of unknown origin (VERIFICATION.md: low-medium; rounded "
            "down). Two distances fit it without fixing it: it is 19.2 km from the Wikipedia "
            "coordinate of Hoeryong city, whose article puts the camp 20 km from the city, and "
            "39.4 km from Kyohwaso 12 (VERIFICATION.md: fits ~40 km).",
        ),
        "published_area_km2": areas({"km2": 225, "source": WIKI22}),
        "box": box(
            (math.sqrt(450), math.sqrt(450)),
            0.01,
            "square of twice the published area (2 x 225 = 450 km2, side 21.2 km), the "
            "envelope-to-area ratio of the two camps for which both are published (Camp 14: "
            "294/155 = 1.9; Camp 16: 1,050/549 = 1.9), centred on the Wikipedia point; corners "
            "rounded to the nearest 0.01 deg",
            {"orientation": "no dimensions published, only an area (225 km2)"},
        ),
        "extent_note": (
            "Only an area is published (~225 km2, Wikipedia): no dimensions, orientation or "
            "outline. The box has about twice that area, as the published envelopes of Camps 14 "
            "and 16 do, and is centred on a point whose meaning is unknown: it is indicative "
            "only and the camp may reach beyond it. Hoeryong city lies on the Tumen river "
            "opposite China (Wikipedia), a few km west of the box; the box was not checked "
            "against the border and may take in the river or Chinese territory: mask them "
            "before analysis. The status is disputed (see status): a footprint decline from 2012 "
            "on may be the reported closure. Corners on a 0.01 deg (~1 km) grid."
        ),
        "geometry_basis": (
            "approximate box from a published area centred on a published point (Wikipedia "
            "point; 2 x 225 km2 envelope as a square); corners rounded to 0.01 deg (~1 km)"
        ),
        "readme": {
            "extent": "~225 km2 (Wikipedia); closed ~2012 vs harvest seen Oct 2012",
            "conf": "single Wikipedia point; only distances (20 km from Hoeryong) fit it",
            "basis": "box: square of 2 x the published area, centred on the point",
        },
    },
    {
        "id": "kwanliso-25",
        "name": "Kwanliso 25, Chongjin (Susong): compound box",
        "kind": "kwanliso",
        "source": (
            "HRNK 'Camp 25 Update 2' (2016): compound at 41.834384, 129.725280, 1,810 x 1,240 m, "
            f"1.01 km2 ({HRNK25}; {HRNK25_KO})"
        ),
        "scope": "whole-site",
        "aliases": [
            "Camp 25",
            "Kwan-li-so No. 25",
            "Kwanliso 25 (Chongjin)",
            "Susong",
            "Chongjin political prison camp",
        ],
        "status": status(
            "operating as of the cited HRNK updates (2016); no cited source reports closure",
            False,
            claim(
                "2010",
                "compound grew 72% in 2009-2010; guard posts rose from 20 (2003) to 43 (2010)",
                HRNK25_GROWTH,
            ),
            claim("2016", "HRNK Camp 25 Update 2: compound 1,810 x 1,240 m, 1.01 km2", HRNK25),
        ),
        "sources": [HRNK25, HRNK25_KO, WIKI25, HRNK25_GROWTH],
        "points": [
            point(
                41.834384,
                129.72528,
                "point in the header of HRNK's imagery report on the compound; centre of this box",
                HRNK25,
            )
        ],
        "location_confidence": confidence(
            "high",
            "the point heads an HRNK imagery-analysis report on the compound itself and recurs "
            "in a second HRNK document (nk_sites_candidates.csv: high; VERIFICATION.md: "
            "medium-high, as both documents are HRNK's). It is 9.8 km NW of the GEM Chongjin "
            "port point, which fits HRNK's '7.5 km NW of the city'. Where in the compound the "
            "point lies is not said: the box allows for that.",
        ),
        "published_area_km2": areas(
            {"km2": 1.01, "source": HRNK25}, {"km2": 0.25, "source": WIKI25}
        ),
        "box": box(
            (3.62, 3.62),
            0.001,
            "square of twice the longest published side (2 x 1.81 km = 3.62 km), centred on the "
            "HRNK point: it holds a 1,810 x 1,240 m compound in either axis-aligned orientation "
            "wherever the point lies inside it (HRNK does not say). Corners rounded to the "
            "nearest 0.001 deg",
            {
                "published_dims_km": [1.81, 1.24],
                "orientation": "not published (HRNK gives '1,810 x 1,240 m' only)",
            },
        ),
        "extent_note": (
            "Sources disagree on size: HRNK 2016 measures the compound at 1,810 x 1,240 m (1.01 "
            "km2); Wikipedia (per VERIFICATION.md) gives ~500 x 500 m (~0.25 km2). The box is "
            "built to the larger HRNK figure, since it must be able to hold the site. HRNK "
            "reported 72% growth in 2009-2010 and guard posts rising from 20 (2003) to 43 "
            "(2010): the compound may have grown again, and the box is about 13 times its "
            "published area. Corners on a 0.001 deg (~100 m) grid: the point and the HRNK "
            "dimensions are known to tens of metres."
        ),
        "geometry_basis": (
            "box from a published extent centred on a published point (HRNK 1,810 x 1,240 m "
            "compound; square of 2 x the longest side, centred on the HRNK point); corners "
            "rounded to 0.001 deg (~100 m)"
        ),
        "readme": {
            "extent": "1,810 x 1,240 m, 1.01 km2 (HRNK 2016) vs ~500 x 500 m (Wikipedia)",
            "conf": "HRNK imagery report on the compound; two HRNK documents",
            "basis": "box: square of 2 x the longest published side",
        },
    },
]

KYOHWASO: list[dict[str, Any]] = [
    {
        "id": "kyohwaso-1",
        "name": "Kyohwaso 1, Kaechon: search box around a derived position",
        "kind": "kyohwaso",
        "source": (
            f"HRNK ({HRNK_KY1}): Kyohwaso No. 1 lies ~2.6 km east of Kaechon city; no "
            "coordinate is published. Position derived from the Wikipedia coordinate of Kaechon "
            f"(39.69861, 125.90611, {WIKI_KAECHON})"
        ),
        "scope": "whole-site",
        "aliases": ["Kyohwaso No. 1", "Kyo-hwa-so No. 1", "Kaechon kyohwaso"],
        "status": status(
            "no dated status claim in the cited sources; HRNK describes a re-education prison "
            "(kyohwaso) east of Kaechon",
            False,
        ),
        "sources": [HRNK_KY1, WIKI_KAECHON, WIKI_KY1],
        "points": [
            point(
                39.6986,
                125.9365,
                "derived, not published: 2.6 km due east of the Wikipedia Kaechon city "
                "coordinate (39.69861, 125.90611), as VERIFICATION.md computes it from HRNK's "
                "description; centre of this box",
                HRNK_KY1,
            )
        ],
        "location_confidence": confidence(
            "low",
            "the position is derived, not published: HRNK says only '~2.6 km east of Kaechon "
            "city' and not where in the city it measured from. A Wikipedia mirror gives "
            "39d30m10sN 125d45m35sE, 25 km SW of the city, which contradicts HRNK and is not "
            "used (nk_sites_candidates.csv).",
        ),
        "published_area_km2": areas({"km2": 0.09, "source": WIKI_KY1}),
        "box": box(
            (5, 5),
            0.01,
            "5 x 5 km box centred on the derived position: +/-2.5 km holds a +/-22.5 deg "
            "reading of 'east' (+/-1.0 km at 2.6 km) plus ~1.5 km for where in the city HRNK "
            "measured from (a judgement). Corners rounded to the nearest 0.01 deg, the "
            "precision of a derived position",
        ),
        "extent_note": (
            "No coordinate is published. HRNK places the prison ~2.6 km east of Kaechon city; "
            "this box is centred on that position, taken from the Wikipedia city coordinate, and "
            "is a search area, not an outline: the compound is ~300 x 300 m (Wikipedia, per "
            "nk_sites_candidates.csv), under 1% of the box. The contradicting mirror coordinate "
            "39d30m10sN 125d45m35sE (39.5028, 125.7597) is 25 km SW of the city and is not used. "
            "The box takes in the eastern edge of Kaechon city: urban change there is not "
            "prison change. Find the compound on high-resolution imagery and replace this box "
            "with a digitised outline before reporting anything."
        ),
        "geometry_basis": (
            "search box around a derived position (2.6 km east of the Wikipedia Kaechon city "
            "point, after HRNK); no published coordinate; corners rounded to 0.01 deg (~1 km)"
        ),
        "readme": {
            "extent": "~300 x 300 m (Wikipedia); ~2.6 km east of Kaechon (HRNK)",
            "conf": "derived position; a mirror's contradicting coordinate is not used",
            "basis": "search box: 5 x 5 km around the derived position",
        },
    },
    {
        "id": "kyohwaso-4",
        "name": "Kyohwaso 4, Kangdong: whole-prison box",
        "kind": "kyohwaso",
        "source": (
            f"HRNK report point 39.008838, 126.153277 via stopnkcrimes.org ({STOPNK_KY4}); "
            f"HRNK: Chaek-kol, 15.5 km SSE of Kangdong ({HRNK_KY4}); fenced area ~2 x 1.5 km "
            "(Wikipedia, per VERIFICATION.md)"
        ),
        "scope": "whole-site",
        "aliases": ["Kyohwaso No. 4", "Kyo-hwa-so No. 4", "Kangdong kyohwaso", "Chaek-kol"],
        "status": status("no dated status claim in the cited sources", False),
        "sources": [STOPNK_KY4, HRNK_KY4, WIKI_KY4, KANGDONG],
        "points": [
            point(39.008838, 126.153277, "HRNK report point; centre of this box", STOPNK_KY4)
        ],
        "location_confidence": confidence(
            "medium",
            "one HRNK report point (VERIFICATION.md: medium; nk_sites_candidates.csv: "
            "medium-high) with no second source. HRNK puts the prison 15.5 km SSE of Kangdong, "
            "while the point is 9.2 km SSE of the English Wikipedia coordinate of Kangdong "
            "County, which may mark the county rather than the town. A GitHub point list "
            "(Synn-Arch/NorthKoreanPrison) disagrees by 15.9 km and is not used.",
        ),
        "published_area_km2": areas({"km2": 3.0, "source": WIKI_KY4}),
        "box": box(
            (4, 4),
            0.001,
            "square of twice the longest published side (2 x 2 km = 4 km), centred on the HRNK "
            "point: it holds the ~2 x 1.5 km fenced area in either axis-aligned orientation "
            "wherever the point lies inside it (not published). Corners rounded to the nearest "
            "0.001 deg",
            {"published_dims_km": [2, 1.5], "orientation": "not published"},
        ),
        "extent_note": (
            "Wikipedia (per VERIFICATION.md) gives a main section of 250 x 200 m inside a fenced "
            "area of ~2 x 1.5 km; HRNK's point does not say which part it marks, so the main "
            "section has no focus area of its own. The box is built to hold the whole fenced "
            "area. HRNK's '15.5 km SSE of Kangdong' and the point's 9.2 km from the Wikipedia "
            "Kangdong County coordinate disagree by ~6 km; the point, not the distance, is used. "
            "Corners on a 0.001 deg (~100 m) grid."
        ),
        "geometry_basis": (
            "box from a published extent centred on a published point (Wikipedia ~2 x 1.5 km "
            "fenced area; square of 2 x the longest side, centred on the HRNK point); corners "
            "rounded to 0.001 deg (~100 m)"
        ),
        "readme": {
            "extent": "~2 x 1.5 km fenced, main section 250 x 200 m (Wikipedia)",
            "conf": "one HRNK point; HRNK's distance from Kangdong disagrees by ~6 km",
            "basis": "box: square of 2 x the longest published side",
        },
    },
    {
        "id": "kyohwaso-12",
        "name": "Kyohwaso 12, Jongo-ri: prison and surroundings",
        "kind": "kyohwaso",
        "source": (
            "HRNK imagery analysis of Kyo-hwa-so No. 12, Jongo-ri (2016; "
            f"{HRNK_KY12}): point 42.209410, 129.755100; walled prison 188 x 128 m (2.4 ha), "
            "annex 46 x 128 m; Jongo-ri station 2.5 km SW"
        ),
        "scope": "whole-site",
        "aliases": ["Kyohwaso No. 12", "Kyo-hwa-so No. 12", "Jongo-ri", "Chongo-ri"],
        "status": status(
            "in use as of the HRNK 2016 imagery analysis; no cited source reports closure",
            False,
            claim(
                "2016",
                "HRNK imagery analysis: walled prison 188 x 128 m (2.4 ha) with a 46 x 128 m annex",
                HRNK_KY12,
            ),
        ),
        "sources": [HRNK_KY12, WIKI_KY12],
        "points": [
            point(
                42.20941,
                129.7551,
                "point in the header of HRNK's report on the walled prison; centre of this box",
                HRNK_KY12,
            )
        ],
        "location_confidence": confidence(
            "medium",
            "a single HRNK report point (VERIFICATION.md: medium; nk_sites_candidates.csv: "
            "high); HRNK's 'Jongo-ri station 2.5 km SW' is the only other locator and no second "
            "source gives a coordinate.",
        ),
        "box": box(
            (2, 2),
            0.001,
            "2 x 2 km box centred on the HRNK point (size a judgement: no whole-site extent is "
            "published; it holds the walled prison, its annex and nearby buildings and leaves "
            "out Jongo-ri station 2.5 km SW). Corners rounded to the nearest 0.001 deg",
        ),
        "extent_note": (
            "Sources disagree on the prison's size: HRNK 2016 measures the walled prison at 188 "
            "x 128 m (2.4 ha; nk_sites_candidates.csv: 23,600 m2) with a 46 x 128 m women's "
            "annex, Wikipedia (per VERIFICATION.md) gives 350 x 150 m. The prison itself is the "
            "focus area kyohwaso-12-walled-prison, built to the larger figure. This 2 x 2 km box "
            "is a judgement for the prison's surroundings (the adjacent copper mine named in "
            "nk_sites_candidates.csv has no published position), not an outline."
        ),
        "geometry_basis": (
            "2 x 2 km box around a published point (HRNK 2016); size is a judgement, no "
            "published whole-site extent; corners rounded to 0.001 deg (~100 m)"
        ),
        "readme": {
            "extent": "prison 188 x 128 m (HRNK) vs 350 x 150 m (Wikipedia); no whole-site extent",
            "conf": "single HRNK report point",
            "basis": "2 x 2 km around the point (judgement)",
        },
    },
    {
        "id": "kyohwaso-12-walled-prison",
        "name": "Kyohwaso 12, Jongo-ri: walled prison (focus)",
        "kind": "kyohwaso",
        "source": (
            f"HRNK 2016 imagery analysis ({HRNK_KY12}): walled prison 188 x 128 m at 42.209410, "
            "129.755100"
        ),
        "scope": "focus-area",
        "parent": "kyohwaso-12",
        "aliases": ["Kyohwaso 12 walled compound"],
        "status": status(
            "in use as of the HRNK 2016 imagery analysis; women's annex added in 2009",
            False,
            claim(
                "2009-08",
                "women's annex (~0.6 ha) built between February and August 2009",
                HRNK_KY12_ANNEX,
            ),
            claim(
                "2016",
                "HRNK imagery analysis: walled prison 188 x 128 m (2.4 ha) with a 46 x 128 m annex",
                HRNK_KY12,
            ),
        ),
        "sources": [HRNK_KY12, WIKI_KY12, HRNK_KY12_ANNEX],
        "points": [
            point(
                42.20941,
                129.7551,
                "point in the header of HRNK's report on the walled prison; centre of this box",
                HRNK_KY12,
            )
        ],
        "location_confidence": confidence(
            "medium",
            "a single HRNK report point read off imagery of the prison itself (VERIFICATION.md: "
            "medium); no second source.",
        ),
        "published_area_km2": areas(
            {"km2": 0.024, "source": HRNK_KY12}, {"km2": 0.0525, "source": WIKI_KY12}
        ),
        "box": box(
            (0.7, 0.7),
            0.001,
            "square of twice the longest side of the larger published size (2 x 350 m = 0.7 "
            "km), centred on the HRNK point: it holds the walled prison in either axis-aligned "
            "orientation wherever the point lies inside it. Corners rounded to the nearest "
            "0.001 deg",
            {"published_dims_km": [0.35, 0.15], "orientation": "not published"},
        ),
        "extent_note": (
            "HRNK 2016: 188 x 128 m (2.4 ha) plus a 46 x 128 m annex; Wikipedia (per "
            "VERIFICATION.md): 350 x 150 m. Built to the larger figure. At 10 m the box is about "
            "70 x 70 pixels and the annex is under 5 pixels wide: read area change here against "
            "the edge uncertainty of a few pixels."
        ),
        "geometry_basis": (
            "box from a published extent centred on a published point (larger published size "
            "350 x 150 m; square of 2 x the longest side, centred on the HRNK point); corners "
            "rounded to 0.001 deg (~100 m)"
        ),
        "readme": {
            "extent": "188 x 128 m + 46 x 128 m annex (HRNK 2016) vs 350 x 150 m (Wikipedia)",
            "conf": "HRNK point read off imagery of the prison",
            "basis": "box: square of 2 x the longest side of the larger size",
        },
    },
]

PORT_STOCKPILE_NOTE = (
    "At ports more stockpile can mean blocked exports, not production, and loaded ship holds "
    "read as coal."
)

COAL_PORTS: list[dict[str, Any]] = [
    {
        "id": "coal-port-nampo",
        "name": "Nampo port: coal quays (search box)",
        "kind": "coal_port",
        "source": (
            "AllSource Analysis 2018, coal-export monitoring report "
            f"({ALLSOURCE_NAMPO}): point 38.7281, 125.4169 tied to Nampo port in a garbled copy; "
            f"38 North 2019: a large coal-transfer/bunkering quay area ({NORTH38_NAMPO})"
        ),
        "scope": "whole-site",
        "aliases": ["Nampho", "Namp'o port", "Nampo coal terminal"],
        "status": status(
            "coal-transfer quay area in use as of the cited 2018-2019 reports; no later cited "
            "status",
            False,
            claim(
                "2018",
                "monitored as a coal-export port (AllSource coal-export report)",
                ALLSOURCE_NAMPO,
            ),
            claim("2019-04", "a large coal-transfer/bunkering quay area", NORTH38_NAMPO),
        ),
        "sources": [ALLSOURCE_NAMPO, NORTH38_NAMPO],
        "points": [
            point(
                38.7281,
                125.4169,
                "point in AllSource's 2018 report, tied to Nampo port in a garbled copy; whether "
                "it marks a quay, the terminal or the city is not clear; centre of this box",
                ALLSOURCE_NAMPO,
            )
        ],
        "location_confidence": confidence(
            "low",
            "VERIFICATION.md rates the point low for the quay: it comes from a garbled copy of "
            "the AllSource report and no source gives a quay-level position "
            "(nk_sites_candidates.csv rates it medium as a point for the port).",
        ),
        "box": box(
            (5, 5),
            0.01,
            "5 x 5 km box centred on the AllSource point (size a judgement: it holds the coal "
            "quays if they lie within 2.5 km of a point of uncertain meaning). Corners rounded "
            "to the nearest 0.01 deg",
        ),
        "extent_note": (
            "No source gives the quay area's outline or size, only 'a large "
            "coal-transfer/bunkering quay area' (38 North). The box is a search area that also "
            f"takes in the city, the river and other port uses. {PORT_STOCKPILE_NOTE} Replace "
            "it with digitised quay polygons before reporting an area."
        ),
        "geometry_basis": (
            "search box around a published point of uncertain meaning (AllSource 2018); size is "
            "a judgement; corners rounded to 0.01 deg (~1 km)"
        ),
        "readme": {
            "extent": "'large coal-transfer/bunkering quay area' (38 North 2019); no size",
            "conf": "point from a garbled report copy; not at quay level",
            "basis": "search box: 5 x 5 km around the point",
        },
    },
    {
        "id": "coal-port-sunchon",
        "name": "Sunchon coal port (river quay): search box",
        "kind": "coal_port",
        "source": (
            f"GEM Global Coal Terminals Tracker, Sunchon Port ({GEM_SUNCHON}): point 39.42, "
            "125.93, 'approximate'; quay built July-October 2017 (38 North, per VERIFICATION.md)"
        ),
        "scope": "whole-site",
        "aliases": ["Sunch'on port", "Suncheon coal port"],
        "status": status(
            "quay built July-October 2017 (38 North); no later cited status",
            False,
            claim("2017-10", "coal quay built between July and October 2017", NORTH38_SUNCHON),
        ),
        "sources": [GEM_SUNCHON, NORTH38_SUNCHON, SUNCHON_CITY],
        "points": [
            point(
                39.42,
                125.93,
                "GEM point, 'approximate'; 0.5 km from the Wikipedia coordinate of Sunchon city "
                "(39.41667, 125.93333), so it marks the city, not the quay; centre of this box",
                GEM_SUNCHON,
            )
        ],
        "location_confidence": confidence(
            "low",
            "GEM gives two decimals and calls the point approximate; it lies 0.5 km from the "
            "Wikipedia coordinate of Sunchon city, so it marks the city (VERIFICATION.md: "
            "'likely the city, not the quay'). No source places the quay.",
        ),
        "box": box(
            (5, 5),
            0.01,
            "5 x 5 km box centred on the GEM point (size a judgement: it holds the quay on the "
            "Taedong at Sunchon only if the quay lies within 2.5 km of the city point, which no "
            "source confirms). Corners rounded to the nearest 0.01 deg",
        ),
        "extent_note": (
            "No position or size is published for the quay, only that it was built in "
            "July-October 2017 (38 North). This is a search box over Sunchon city and its reach "
            "of the Taedong river (Wikipedia: the city is on the Taedong): most of what changes "
            f"in it is the city. {PORT_STOCKPILE_NOTE} Find the quay on dated imagery and "
            "replace the box with a digitised polygon before reporting."
        ),
        "geometry_basis": (
            "search box around a published approximate point (GEM; marks the city); size is a "
            "judgement; corners rounded to 0.01 deg (~1 km)"
        ),
        "readme": {
            "extent": "no size; quay built Jul-Oct 2017 (38 North)",
            "conf": "GEM point is the city centre (0.5 km from Wikipedia's Sunchon point)",
            "basis": "search box: 5 x 5 km around the point",
        },
    },
    {
        "id": "coal-port-ryongchon",
        "name": "Ryongchon coal port",
        "kind": "coal_port",
        "source": (
            f"GEM Global Coal Terminals Tracker, Ryongchon Port ({GEM_RYONGCHON}): point "
            "39.922064, 124.316558, 'exact'; ~1.6 km downstream from Dandong, 14-bay storage "
            "building (38 North/Stimson, as cited by GEM)"
        ),
        "scope": "whole-site",
        "aliases": ["Ryongch'on port", "Yongcheon port"],
        "status": status("no dated status claim in the cited sources", False),
        "sources": [GEM_RYONGCHON, NORTH38_RYONGCHON],
        "points": [
            point(39.922064, 124.316558, "GEM point, 'exact'; centre of this box", GEM_RYONGCHON)
        ],
        "location_confidence": confidence(
            "medium",
            "GEM calls the point exact and gives six decimals, but it is a single source "
            "(VERIFICATION.md: medium); the description (~1.6 km downstream from Dandong, a "
            "14-bay storage building) gives no coordinate to check it against.",
        ),
        "box": box(
            (2, 2),
            0.001,
            "2 x 2 km box centred on the GEM point (size a judgement: a port with a 14-bay "
            "storage building around an 'exact' point). Corners rounded to the nearest 0.001 deg",
        ),
        "extent_note": (
            "No outline or size is published. The port is on the Yalu estuary beside the "
            "Chinese border (~1.6 km downstream from Dandong per 38 North/Stimson via GEM): the "
            "box was not checked against the border and may take in river water or Chinese "
            f"territory; mask them before analysis. {PORT_STOCKPILE_NOTE}"
        ),
        "geometry_basis": (
            "2 x 2 km box around a published point (GEM, 'exact'); size is a judgement; corners "
            "rounded to 0.001 deg (~100 m)"
        ),
        "readme": {
            "extent": "no size; 14-bay storage building (38 North/Stimson via GEM)",
            "conf": "GEM 'exact' point, single source",
            "basis": "2 x 2 km around the point (judgement)",
        },
    },
    {
        "id": "coal-port-chongjin",
        "name": "Chongjin port: coal and ore harbour (search box)",
        "kind": "coal_port",
        "source": (
            f"GEM Global Coal Terminals Tracker, Chongjin Port ({GEM_CHONGJIN}): point 41.7816, "
            "129.8204, 'approximate'; two harbour areas, one for coal and ore"
        ),
        "scope": "whole-site",
        "aliases": ["Ch'ongjin port", "Chongjin harbour"],
        "status": status("no dated status claim in the cited sources", False),
        "sources": [GEM_CHONGJIN],
        "points": [
            point(41.7816, 129.8204, "GEM point, 'approximate'; centre of this box", GEM_CHONGJIN)
        ],
        "location_confidence": confidence(
            "low",
            "GEM calls the point approximate (VERIFICATION.md: low; nk_sites_candidates.csv: "
            "medium-low) and names two harbour areas without saying where the coal and ore "
            "harbour is.",
        ),
        "box": box(
            (5, 5),
            0.01,
            "5 x 5 km box centred on the GEM point (size a judgement: meant to hold both harbour "
            "areas if they lie within 2.5 km of an approximate point). Corners rounded to the "
            "nearest 0.01 deg",
        ),
        "extent_note": (
            "No outline, size or harbour positions are published; GEM names two harbour areas, "
            "one for coal and ore. The box is a search area over the port and the city beside "
            f"it; Kwanliso 25 is ~10 km NW, outside it. {PORT_STOCKPILE_NOTE} Replace it with "
            "digitised quay polygons before reporting."
        ),
        "geometry_basis": (
            "search box around a published approximate point (GEM); size is a judgement; "
            "corners rounded to 0.01 deg (~1 km)"
        ),
        "readme": {
            "extent": "two harbour areas, one for coal and ore (GEM); no size",
            "conf": "GEM 'approximate' point",
            "basis": "search box: 5 x 5 km around the point",
        },
    },
]

GEM_APPROXIMATE = (
    "GEM marks the location 'Approximate' and publishes no distance for it; its FAQ says that "
    "for some mines 'only approximate location information could be found'."
)
MINE_BOX = box(
    (5, 5),
    0.01,
    "5 x 5 km box centred on the GEM point (size a judgement: GEM states no accuracy for "
    "'Approximate'; the box holds the mine's surface works only if they lie within 2.5 km of "
    "the point). Corners rounded to the nearest 0.01 deg, the precision of an approximate point",
)
MINE_FOOTPRINT = (
    "Underground mine: the surface footprint (portals, spoil, stockpiles, loading) is a small "
    "part of the box, which is a search area, not the mine's lease. Find the works on dated "
    "imagery and draw a focus area before reporting an area."
)
MINE_BASIS = (
    "search box around a published approximate point (GEM); size is a judgement; corners "
    "rounded to 0.01 deg (~1 km)"
)


def gem_mine(
    site_id: str,
    row: str,
    wiki: str,
    lat: float,
    lon: float,
    *,
    name: str,
    aliases: list[str],
    facts: str,
    output: str,
    note: str,
    conf_reason: str,
    readme_conf: str,
    extra_sources: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A mine from GEM's 2022 table (gcmt_2022_north_korea.csv): an 'Approximate' point in a
    5 x 5 km search box. ``facts``: what the row says besides the point."""
    return {
        "id": site_id,
        "name": name,
        "kind": "coal_mine",
        "source": f"Global Energy Monitor, Global Coal Mine Tracker 2022, {row} ({wiki}): {lat}, {lon}, 'Approximate'; {facts}",
        "scope": "whole-site",
        "aliases": aliases,
        "status": status(
            "operating according to GEM (2022); no other cited status",
            False,
            claim("2022", f"Operating; {output}", gem_row(row)),
        ),
        "sources": [wiki, gem_row(row), GEM_FAQ, *extra_sources],
        "points": [point(lat, lon, "GEM point, 'Approximate'; centre of this box", gem_row(row))],
        "location_confidence": confidence("low", f"{GEM_APPROXIMATE} {conf_reason}"),
        "box": MINE_BOX,
        "extent_note": f"No outline or size is published. {note} {MINE_FOOTPRINT}",
        "geometry_basis": MINE_BASIS,
        "readme": {
            "extent": "no size published",
            "conf": readme_conf,
            "basis": "search box: 5 x 5 km around the point",
        },
    }


COAL_MINES: list[dict[str, Any]] = [
    gem_mine(
        "coal-mine-anju",
        "M0745",
        GEM_ANJU,
        39.621907,
        125.656948,
        name="Anju Coal Mining Complex",
        aliases=["Anju coal complex"],
        facts="anthracite, underground, 10 Mt/yr, South Pyongan",
        output="10 Mt/yr, underground, anthracite",
        note=(
            "A 10 Mt/yr complex spans several mines: GEM's 2024 wiki places its Cheongnam mine "
            "28 km SW of this point (coal-mine-cheongnam), so this box cannot hold the complex, "
            "and GEM does not say which part the point marks."
        ),
        conf_reason="No second source places the complex's centre.",
        readme_conf="GEM 'Approximate'; a complex of several mines",
    ),
    {
        "id": "coal-mine-cheongnam",
        "name": "Cheongnam coal mine (Anju complex)",
        "kind": "coal_mine",
        "source": (
            f"Global Energy Monitor wiki (2024), Anju Coal Mining Complex ({GEM_ANJU}): Cheongnam "
            "mine at 39.4716503, 125.3957571, 'approximate' (as listed in "
            "nk_sites_candidates.csv); not in GEM's 2022 table"
        ),
        "scope": "whole-site",
        "aliases": ["Chongnam coal mine", "Anju complex: Cheongnam"],
        "status": status(
            "no status in the cited sources; GEM lists it as a mine of the Anju Coal Mining "
            "Complex",
            False,
        ),
        "sources": [GEM_ANJU, GEM_FAQ],
        "points": [
            point(
                39.4716503,
                125.3957571,
                "GEM 2024 wiki point, 'approximate' (as printed, 7 decimals); centre of this box",
                GEM_ANJU,
            )
        ],
        "location_confidence": confidence(
            "low",
            f"{GEM_APPROXIMATE} nk_sites_candidates.csv rates it low-medium; rounded down. It is "
            "28 km SW of GEM's 2022 point for the Anju complex.",
        ),
        "box": MINE_BOX,
        "extent_note": (
            "No outline or size is published. The mine is not in GEM's 2022 table; the point is "
            "from GEM's 2024 wiki page for the Anju complex, 28 km SW of that complex's 2022 "
            f"point. {MINE_FOOTPRINT}"
        ),
        "geometry_basis": MINE_BASIS,
        "readme": {
            "extent": "no size published",
            "conf": "GEM 2024 wiki 'approximate'; 28 km from the Anju complex point",
            "basis": "search box: 5 x 5 km around the point",
        },
    },
    gem_mine(
        "coal-mine-bongcheon",
        "M2375",
        "https://www.gem.wiki/Bongcheon_Coal_Mine",
        39.775859,
        125.959091,
        name="Bongcheon Coal Mine",
        aliases=["Pongch'on coal mine", "Pongchon coal mine"],
        facts="lignite, underground, 1.2 Mt/yr, South Pyongan, coalfield Gaecheon",
        output="1.2 Mt/yr, underground, lignite",
        note=(
            "GEM gives the coalfield as Gaecheon (Kaechon); Pongch'on-dong is a neighbourhood of "
            "Kaechon city (Wikipedia) and the point is 9.7 km NNE of the Wikipedia Kaechon city "
            "coordinate, which fits. nk_sites_candidates.csv repeats the same point."
        ),
        conf_reason=(
            "The name fits a Kaechon neighbourhood 9.7 km from the point, but no source places "
            "the mine itself (nk_sites_candidates.csv: low-medium; rounded down)."
        ),
        readme_conf="GEM 'Approximate'; name fits a Kaechon neighbourhood",
        extra_sources=(KAECHON_DONGS, WIKI_KAECHON),
    ),
    gem_mine(
        "coal-mine-shinchang-youth",
        "M2463",
        "https://www.gem.wiki/Shinchang_Youth_Coal_Mine",
        39.611479,
        126.27461,
        name="Shinchang Youth Coal Mine",
        aliases=["Sinchang Youth coal mine"],
        facts="lignite, underground, 2.5 Mt/yr, South Pyongan",
        output="2.5 Mt/yr, underground, lignite",
        note="GEM gives no location name; no second source places the mine.",
        conf_reason="No second source places the mine.",
        readme_conf="GEM 'Approximate'",
    ),
    {
        "id": "coal-mine-february-8-jikdong",
        "name": "February 8 Jikdong Coal Mine",
        "kind": "coal_mine",
        "source": (
            f"Global Energy Monitor wiki (2024), February 8 Jikdong Coal Mine ({GEM_JIKDONG}): "
            "39.4915628, 125.668607, labelled exact (as listed in nk_sites_candidates.csv); GEM's "
            "2022 table (row M2627) gives 39.051525, 125.668607, 'Approximate'; lignite, "
            "underground, 0.03 Mt/yr, location Suncheon, coalfield Jikdong"
        ),
        "scope": "whole-site",
        "aliases": ["2.8 Jikdong Coal Mine", "Chiktong coal mine"],
        "status": status(
            "operating according to GEM (2022); no other cited status",
            False,
            claim("2022", "Operating; 0.03 Mt/yr, underground, lignite", gem_row("M2627")),
        ),
        "sources": [GEM_JIKDONG, gem_row("M2627"), GEM_FAQ, SUNCHON_CITY],
        "points": [
            point(
                39.4915628,
                125.668607,
                "GEM 2024 wiki point, labelled exact (as printed, 7 decimals); chosen over the "
                "conflicting 2022 point (see extent_note); centre of this box",
                GEM_JIKDONG,
            )
        ],
        "location_confidence": confidence(
            "low",
            "GEM's own sources disagree by 48.9 km (2022 table: 39.051525, 'Approximate'; 2024 "
            "wiki: 39.4915628, 'exact') and nk_sites_candidates.csv rates the mine low. GEM's "
            "location field says Suncheon (Sunchon) and Chik-dong is a Sunchon neighbourhood "
            "(Wikipedia), yet even the chosen point is 24.3 km WNW of the Wikipedia Sunchon "
            "coordinate: the mine may be in neither box.",
        ),
        "box": MINE_BOX,
        "extent_note": (
            "Conflicting points, carried here: GEM's 2022 table gives 39.051525, 125.668607 "
            "('Approximate') and GEM's 2024 wiki 39.4915628, 125.668607 ('exact'). The "
            "longitudes agree to six decimals, so one latitude is very likely a typing error. "
            "This box uses the 2024 point, openly, because it is GEM's later revision, it is "
            "the one GEM calls exact, and it is nearer the mine's stated location, Suncheon "
            "(Sunchon: 24.3 km away, against 46.5 km for the 2022 point). Neither point is "
            "confirmed, and Chik-dong (Jikdong) is a neighbourhood of Sunchon city (Wikipedia), "
            "so the mine may lie closer to Sunchon than either point. An analyst who prefers "
            "the 2022 point adds it as a separate site rather than moving this one. "
            f"{MINE_FOOTPRINT}"
        ),
        "geometry_basis": MINE_BASIS,
        "readme": {
            "extent": "no size; GEM 2022 and 2024 points conflict (48.9 km apart)",
            "conf": "GEM's two points disagree; chosen point 24 km from Sunchon",
            "basis": "search box: 5 x 5 km around the 2024 point",
        },
    },
    gem_mine(
        "coal-mine-gaecheon",
        "M2421",
        "https://www.gem.wiki/Gaecheon_Coal_Mine",
        38.883205,
        126.064814,
        name="Gaecheon Coal Mine",
        aliases=["Kaech'on coal mine"],
        facts="lignite, underground, 1.4 Mt/yr, South Pyongan, location Gaecheon-si, coalfield Gaecheon",
        output="1.4 Mt/yr, underground, lignite",
        note=(
            "Contradiction carried: GEM's location field says Gaecheon-si (Kaechon city) but the "
            "point is 91.6 km south of the Wikipedia Kaechon city coordinate (39.69861, "
            "125.90611). Either the name or the point is wrong; the point is used because it is "
            "the only coordinate, and the mine may not be in the box."
        ),
        conf_reason="The point contradicts GEM's own location field (91.6 km from Kaechon).",
        readme_conf="GEM 'Approximate'; point 92 km from the named city",
        extra_sources=(WIKI_KAECHON,),
    ),
    gem_mine(
        "coal-mine-hwapung",
        "M2787",
        "https://www.gem.wiki/Hwapung_Coal_Mine",
        38.921235,
        125.580334,
        name="Hwapung Coal Mine",
        aliases=["Hwap'ung coal mine"],
        facts="bituminous, underground, 0.2 Mt/yr, South Pyongan, location Hwapung-dong, supplies a steel plant",
        output="0.2 Mt/yr, underground, bituminous",
        note="GEM's location field is Hwapung-dong; no second source places it.",
        conf_reason="No second source places the mine or Hwapung-dong.",
        readme_conf="GEM 'Approximate'",
    ),
    gem_mine(
        "coal-mine-cheonseong-youth",
        "M2606",
        "https://www.gem.wiki/Cheonseong_Youth_Coal_Mine",
        40.268155,
        125.179561,
        name="Cheonseong Youth Coal Mine",
        aliases=["Chonsong Youth coal mine"],
        facts="lignite, underground, 0.01 Mt/yr, North Pyongan",
        output="0.01 Mt/yr, underground, lignite",
        note=(
            "GEM gives no location name. At 0.01 Mt/yr the mine is very small: its surface works "
            "may be a few hectares, a few dozen Sentinel-2 pixels."
        ),
        conf_reason="No location name and no second source.",
        readme_conf="GEM 'Approximate'; no location name",
    ),
    gem_mine(
        "coal-mine-ryongmun",
        "M2682",
        "https://www.gem.wiki/Ryongmun_Coal_Mine",
        40.560291,
        126.576147,
        name="Ryongmun Coal Mine",
        aliases=["Ryongmun colliery"],
        facts="lignite, underground, 0.08 Mt/yr, North Pyongan, location Gujang-gun, supplies a power plant",
        output="0.08 Mt/yr, underground, lignite",
        note=(
            "Contradiction carried: GEM's location field is Gujang-gun (Kujang County, North "
            "Pyongan), whose Ryongmun area lies at about 39°51′N 126°06′E (UNESCO tentative "
            "list, 'Caves in Kujang Area'; Chinese Wikipedia lists a Ryongmun colliery line in "
            "Kujang County), 88.7 km SSW of this point, while the point lies 11.4 km from the "
            "Wikipedia coordinate of Chonchon County, Chagang province (40.615556, 126.463056). "
            "The point is used because it is the only coordinate for the mine; the mine is "
            "probably not in this box."
        ),
        conf_reason="The point contradicts GEM's own location field (Kujang County, ~89 km away).",
        readme_conf="GEM 'Approximate'; point ~89 km from the named county",
        extra_sources=(UNESCO_KUJANG, ZH_KUJANG, CHONCHON),
    ),
    gem_mine(
        "coal-mine-ryeongdae",
        "M2521",
        "https://www.gem.wiki/Ryeongdae_Coal_Mine",
        40.490308,
        129.068654,
        name="Ryeongdae Coal Mine",
        aliases=["Ryongdae coal mine"],
        facts="lignite, underground, output not given ('*'), province South Pyongan, location Eunsan-gun, supplies a steel plant",
        output="output not given ('*'), underground, lignite",
        note=(
            "Contradiction carried: GEM lists the mine in South Pyongan, location Eunsan-gun "
            "(Unsan County, South Pyongan), but the point lies on the east coast, 13.8 km ENE "
            "of the Wikipedia coordinate of Tanchon, South Hamgyong (40.458, 128.911). Either "
            "the province or the point is wrong; the point is used because it is the only "
            "coordinate, and the mine may not be in the box."
        ),
        conf_reason="The point contradicts GEM's own province and county (it lies near Tanchon).",
        readme_conf="GEM 'Approximate'; point in another province than GEM's",
        extra_sources=(TANCHON,),
    ),
    gem_mine(
        "coal-mine-saebyol",
        "M0746",
        "https://www.gem.wiki/Saebyol_Coal_Mining_Complex",
        42.860757,
        130.2001,
        name="Saebyol Coal Mining Complex",
        aliases=["Saebyol coal complex", "Saeppyol"],
        facts="anthracite, underground, 6 Mt/yr, North Hamgyong",
        output="6 Mt/yr, underground, anthracite",
        note=(
            "The point is 5.5 km N of the Wikipedia coordinate of Kyongwon County, also known as "
            "Saebyol (42.81139, 130.19944), which fits an 'approximate' county-level point. "
            "Kyongwon borders China on the Tumen: the box was not checked against the border."
        ),
        conf_reason="It fits the county named Saebyol (5.5 km away) but no source places the mine.",
        readme_conf="GEM 'Approximate'; 5.5 km from the county point",
        extra_sources=(KYONGWON,),
    ),
]

CONTROL_CHECK = (
    "Stability is an assumption, not a finding: no source certifies this area as unchanged. "
    "The pipeline's measured change here IS the false-change rate to show next to any finding "
    "for the sites in control_for. Before a report uses it, an analyst checks this box on dated "
    "high-resolution imagery for the report's years; if it shows real change (construction, "
    "demolition, new fields, flooding, mining), the analyst replaces the control, records why, "
    "and re-runs."
)


def control(
    site_id: str,
    name: str,
    source_url: str,
    *,
    published_as: str,
    size_km: float,
    rounding: float,
    level: str,
    conf_reason: str,
    expected: str,
    note: str,
    aliases: list[str] | None = None,
) -> dict[str, Any]:
    """A control: a box of ``size_km`` around the published coordinate of a named place (from
    ADDED_SOURCES). ``expected``: what the box probably holds (a judgement, not checked)."""
    lat, lon = ADDED_SOURCES[source_url]["coordinate"]
    return {
        "id": site_id,
        "name": name,
        "kind": "control",
        "source": f"{name}: published coordinate {published_as} ({source_url})",
        "scope": "whole-site",
        "aliases": aliases or [],
        "status": status(
            "control: stability assumed, not certified by any source (see control_check)", False
        ),
        "sources": [source_url],
        "points": [
            point(
                lat,
                lon,
                f"published coordinate of the named place ({published_as}); centre of this box",
                source_url,
            )
        ],
        "location_confidence": confidence(
            level, f"rates the named place's position: {conf_reason}"
        ),
        "box": box(
            (size_km, size_km),
            rounding,
            f"{size_km:g} x {size_km:g} km box centred on the named place's published coordinate "
            f"({'an arc-second coordinate: 2 km and a 0.001 deg grid' if rounding == 0.001 else 'an arc-minute coordinate (+/-0.9 km): 3 km so the place is inside, and a 0.01 deg grid'}). "
            f"Corners rounded to the nearest {rounding:g} deg",
        ),
        "extent_note": (
            f"A control box, not a site outline. Land cover was not checked on imagery; expected "
            f"(a judgement): {expected}. {note}"
        ),
        "geometry_basis": (
            f"control box around the published coordinate of a named place ({name}); size is a "
            f"judgement; corners rounded to {rounding:g} deg"
        ),
        "control_check": CONTROL_CHECK,
        "readme": {"extent": "none (control)", "conf": conf_reason, "basis": "control box"},
    }


CONTROLS: list[dict[str, Any]] = [
    control(
        "control-maengsan",
        "Maengsan County",
        MAENGSAN,
        published_as="39°40′00″N 126°35′00″E",
        size_km=3,
        rounding=0.01,
        level="low",
        conf_reason=(
            "a round 39°40′00″N 126°35′00″E on a Chinese Wikipedia mirror: it may mark the "
            "county's middle rather than its town, and it is no finer than an arc-minute"
        ),
        expected="the county town of Maengsan and its valley farmland, or mountain forest if the coordinate marks the county's middle",
        note=(
            "The only sourced, non-urban position found between the Yodok and Kaechon/Pukchang "
            "groups: it is ~13 km west of the Kwanliso 15 box but ~36 km east of the Kwanliso 14 "
            "box. A closer control for the Kaechon/Pukchang sites is still needed: the nearer "
            "named places with public coordinates found are the Kaechon and Tokchon city centres, "
            "the Nyongbyon nuclear county and the Kujang/Ryongmun mining area, none of them a "
            "stable field or village."
        ),
    ),
    control(
        "control-kangdong",
        "Kangdong County",
        KANGDONG,
        published_as="39°5′26.99″N 126°8′12.01″E",
        size_km=2,
        rounding=0.001,
        level="medium",
        conf_reason=(
            "an English Wikipedia county coordinate to 0.01 arc-second, origin unknown; it may "
            "mark the county rather than Kangdong town (see extent_note)"
        ),
        expected="Kangdong town or the farmland around it",
        note=(
            "HRNK places Kyohwaso 4 15.5 km SSE of Kangdong, but the prison point is 9.2 km from "
            "this coordinate, so the coordinate may not be the town. Wikipedia puts Kim Jong "
            "Un's Kangdong residence near the Taedong and weapons-industry (Second Economic "
            "Committee) facilities in the county's north-east; whether either is near this box "
            "is not known."
        ),
    ),
    control(
        "control-chunghwa",
        "Chunghwa station, Chunghwa-up",
        CHUNGHWA,
        published_as="38°51′26″N 125°47′18″E",
        size_km=2,
        rounding=0.001,
        level="medium",
        conf_reason="a station coordinate to the arc-second on an English Wikipedia copy (2020); a single source",
        expected="the small county town of Chunghwa, its station and the farmland of a suburban farming county of Pyongyang",
        note=(
            "The coal-belt control: a village/field area nearest the GEM points for Hwapung and "
            "Gaecheon (19-24 km). The northern coal-belt mines are 60-90 km away from any "
            "sourced control."
        ),
    ),
    control(
        "control-nampo-west-sea-barrage",
        "West Sea Barrage locks (Nampo Dam)",
        NAMPO_DAM,
        published_as="38°41′N 125°10′E",
        size_km=3,
        rounding=0.01,
        level="medium",
        conf_reason="an arc-minute coordinate (+/-0.9 km) that English Wikipedia gives for the barrage's locks; the 3 km box holds them",
        expected="the barrage's locks, estuary water and shore at the Taedong mouth, ~15 km west of Nampo",
        note=(
            "A shore and water control for the Nampo port box (~22 km east). Ships in the locks "
            "and at anchor will register as change; that is part of what a port's false-change "
            "rate is made of, but an analyst notes it. The barrage was built in 1981-1986 "
            "(Wikipedia)."
        ),
        aliases=["Nampo Dam", "West Sea Dam"],
    ),
    control(
        "control-wihwa-island",
        "Wihwa Island",
        WIHWA,
        published_as="40°08′13″N 124°26′46″E",
        size_km=2,
        rounding=0.001,
        level="medium",
        conf_reason="an arc-second coordinate on an English Wikipedia copy; a single source",
        expected="farmland on a river island in the Yalu at Sinuiju",
        note=(
            "About 26 km NNE of the Ryongchon port point. A joint free-trade area on the "
            "Hwanggumpyong and Wihwa islands was agreed in June 2011 (Wikipedia): construction "
            "there would be real change, not false change, and the control must then be "
            "replaced. The island lies on the China border: mask Chinese territory and river "
            "water before use."
        ),
        aliases=["Wihwado"],
    ),
    control(
        "control-kilju",
        "Kilju County",
        KILJU,
        published_as="40°57′43″N 129°20′12″E",
        size_km=2,
        rounding=0.001,
        level="medium",
        conf_reason=(
            "an arc-second English Wikipedia coordinate (read on a machine-translated mirror); "
            "the article names Kilju town as the county seat but does not say the coordinate "
            "marks it"
        ),
        expected="Kilju town and its farmland",
        note="South of the Kwanliso 16 box, in the next county.",
    ),
    control(
        "control-kyongsong",
        "Kyongsong County",
        KYONGSONG,
        published_as="41°39′N 129°29′E",
        size_km=3,
        rounding=0.01,
        level="medium",
        conf_reason="an arc-minute English Wikipedia coordinate (+/-0.9 km); the 3 km box holds the place",
        expected="the county town (Kyongsong-up) or the coastal Kyongsong Plain and its fields",
        note="South of Chongjin: the nearest sourced position to Kwanliso 25 and the Chongjin port box.",
    ),
    control(
        "control-hoeryong",
        "Hoeryong city",
        HOERYONG,
        published_as="42°26′N 129°45′E",
        size_km=3,
        rounding=0.01,
        level="medium",
        conf_reason=(
            "an arc-minute English Wikipedia coordinate of a city (+/-0.9 km); the same article "
            "puts Kwanliso 22 20 km from the city, which fits the Camp 22 point (19.2 km)"
        ),
        expected="the centre of Hoeryong city (2008 population ~150,000) and the Tumen river opposite China",
        note=(
            "This is a city centre, not farmland: urban works (Wikipedia reports a 2007 drive to "
            "rebuild and adorn the city) register as change, so its false-change rate is an "
            "upper bound. It is the only sourced position found near Kwanliso 22 and Kyohwaso "
            "12. The box was not checked against the China border on the Tumen: mask Chinese "
            "territory before use."
        ),
    ),
]

SITES: list[dict[str, Any]] = [
    # kwanliso, by region: Kaechon/Pukchang, Yodok, Hwasong, Hoeryong/Chongjin
    *EXISTING_KWANLISO[:2],
    NEW_KWANLISO[0],
    *EXISTING_KWANLISO[2:],
    *NEW_KWANLISO[1:],
    *KYOHWASO,
    *COAL_PORTS,
    *COAL_MINES,
    *CONTROLS,
]


# -- building ---------------------------------------------------------------------------------


def _snap(value: float, step: float) -> float:
    decimals = round(-math.log10(step))
    return round(round(value / step) * step, decimals)


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _corners(lat: float, lon: float, size_km: tuple[float, float], step: float) -> list[float]:
    """West, south, east, north of a box of size_km (east-west, north-south) centred on the
    point: geodesic half-sizes from the centre, then each edge snapped to the ``step`` grid."""
    ew_km, ns_km = size_km
    _, north, _ = GEOD.fwd(lon, lat, 0.0, ns_km * 500.0)
    _, south, _ = GEOD.fwd(lon, lat, 180.0, ns_km * 500.0)
    east, _, _ = GEOD.fwd(lon, lat, 90.0, ew_km * 500.0)
    west, _, _ = GEOD.fwd(lon, lat, 270.0, ew_km * 500.0)
    return [_snap(v, step) for v in (west, south, east, north)]


def utm_epsg(lon: float, lat: float) -> int:
    return (32600 if lat >= 0 else 32700) + int((lon + 180.0) // 6.0) + 1


def to_utm(geom: Any, epsg: int) -> Any:
    fwd = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)
    return shapely.transform(geom, fwd.transform, interleaved=False)


def _as_shipped(ring: list[list[float]]) -> dict[str, Any]:
    """Sizes and area of the box in the UTM zone of its centre."""
    (w, s), (e, _), (_, n) = ring[0], ring[1], ring[2]
    epsg = utm_epsg((w + e) / 2, (s + n) / 2)
    projected = to_utm(Polygon(ring), epsg)
    (x0, y0), (x1, y1), (x2, y2) = list(projected.exterior.coords)[:3]
    return {
        "size_km": [
            round(math.dist((x0, y0), (x1, y1)) / 1000, 2),
            round(math.dist((x1, y1), (x2, y2)) / 1000, 2),
        ],
        "area_km2": round(projected.area / 1e6, 3),
        "crs": f"EPSG:{epsg}",
    }


def _feature(spec: dict[str, Any]) -> dict[str, Any]:
    """A site's Feature: its box built from ``box`` around its first point or, for a site an
    analyst has digitised, its ``geometry`` (a GeoJSON Polygon, lon/lat) as given."""
    props = {k: v for k, v in spec.items() if k not in ("readme", "geometry")}
    if "geometry" in spec:
        if "box" in spec:
            raise ValueError(f"{spec['id']}: a digitised site has a geometry and no box")
        return {"type": "Feature", "properties": props, "geometry": spec["geometry"]}
    centre = props["points"][0]
    raw = props["box"]
    size = raw["size_km"]
    west, south, east, north = _corners(
        centre["lat"], centre["lon"], size, raw["corner_rounding_deg"]
    )
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    props["box"] = {
        "size_km": [_number(round(v, 2)) for v in size],
        **{k: v for k, v in raw.items() if k not in ("size_km", "built_as", "corner_rounding_deg")},
        "claimed_area_km2": _number(round(size[0] * size[1], 2)),
        "built_as": raw["built_as"],
        "corner_rounding_deg": raw["corner_rounding_deg"],
        "as_shipped": _as_shipped(ring),
    }
    return {
        "type": "Feature",
        "properties": props,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def _polygon(feature: dict[str, Any]) -> Polygon:
    rings = feature["geometry"]["coordinates"]
    return Polygon(rings[0], rings[1:])


def utm_area_km2(feature: dict[str, Any]) -> float:
    poly = _polygon(feature)
    return float(to_utm(poly, utm_epsg(poly.centroid.x, poly.centroid.y)).area) / 1e6


def _centre(feature: dict[str, Any]) -> tuple[float, float]:
    c = _polygon(feature).centroid
    return c.x, c.y


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    return GEOD.inv(a[0], a[1], b[0], b[1])[2] / 1000


def boundary_gap_km(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Distance between two features' polygons, in the UTM zone of the first's centre."""
    epsg = utm_epsg(*_centre(a))
    return to_utm(_polygon(a), epsg).distance(to_utm(_polygon(b), epsg)) / 1000


def _assign_controls(features: list[dict[str, Any]]) -> None:
    """Each watched site is served by its nearest control (box centre to box centre; a focus
    area by its parent's); each control lists them in ``control_for`` and its extent_note says
    how far they are."""
    controls = [f for f in features if f["properties"]["kind"] == "control"]
    watched = [f for f in features if f["properties"]["kind"] != "control"]
    served: dict[str, list[tuple[str, float]]] = {c["properties"]["id"]: [] for c in controls}
    chosen: dict[str, str] = {}
    for site in watched:  # parents come before their focus areas
        dist = {c["properties"]["id"]: _km(_centre(site), _centre(c)) for c in controls}
        parent = site["properties"].get("parent")
        best = chosen[parent] if parent else min(dist, key=lambda cid: (dist[cid], cid))
        chosen[site["properties"]["id"]] = best
        served[best].append((site["properties"]["id"], dist[best]))
    for c in controls:
        props = c["properties"]
        gaps = {w["properties"]["id"]: boundary_gap_km(c, w) for w in watched}
        nearest = min(gaps, key=lambda sid: (gaps[sid], sid))
        if gaps[nearest] < CONTROL_MIN_GAP_KM:
            raise ValueError(
                f"{props['id']}: {gaps[nearest]:.2f} km from {nearest}, under {CONTROL_MIN_GAP_KM} km"
            )
        listing = ", ".join(f"{sid} {d:.0f} km" for sid, d in served[props["id"]])
        props["extent_note"] += (
            f" Nearest watched-site boundary: {nearest}, {gaps[nearest]:.1f} km away. Serves, as "
            f"their nearest control (box centre to box centre): {listing}."
        )
        check = props.pop("control_check")
        props["control_for"] = [sid for sid, _ in served[props["id"]]]
        props["control_check"] = check


def build() -> dict[str, Any]:
    """The FeatureCollection, checked: ids, sizes, points inside, controls clear of sites."""
    features = [_feature(spec) for spec in SITES]
    ids = [f["properties"]["id"] for f in features]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate ids: {sorted({i for i in ids if ids.count(i) > 1})}")
    for f in features:
        props = f["properties"]
        poly = _polygon(f)
        if len(props["id"]) > 54:
            raise ValueError(f"{props['id']}: id longer than 54 characters")
        if utm_area_km2(f) >= 1500:
            raise ValueError(f"{props['id']}: area over 1,500 km2")
        for p in props["points"]:
            if not poly.contains(shapely.Point(p["lon"], p["lat"])):
                raise ValueError(f"{props['id']}: point {p['lat']}, {p['lon']} outside it")
    _assign_controls(features)
    return {"type": "FeatureCollection", "features": features}


def geojson_text(collection: dict[str, Any]) -> str:
    return json.dumps(collection, indent=2, ensure_ascii=False) + "\n"


# -- the README tables --------------------------------------------------------------------------


def _label(source: str) -> str:
    if source.startswith("Global Energy Monitor, Global Coal Mine Tracker 2022"):
        return "GEM 2022, approximate"
    return SOURCE_LABELS.get(source, source)


def site_table(collection: dict[str, Any]) -> str:
    readme = {spec["id"]: spec["readme"] for spec in SITES}
    rows = [
        "| id | name | kind | point (source) | extent (source) | box as shipped | confidence | geometry basis |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in collection["features"]:
        p = f["properties"]
        w, s, e, n = _polygon(f).bounds
        first = p["points"][0]
        more = f" (+{len(p['points']) - 1} more)" if len(p["points"]) > 1 else ""
        note = readme[p["id"]]
        if "box" in p:
            shipped = p["box"]["as_shipped"]
            sizes = f"{shipped['size_km'][0]:.1f} x {shipped['size_km'][1]:.1f} km, "
            grid = f", {p['box']['corner_rounding_deg']:g} deg grid"
        else:
            sizes, grid = "digitised; ", ""
        rows.append(
            f"| `{p['id']}` | {p['name']} | {p['kind']} | {first['lat']}, {first['lon']} "
            f"({_label(first['source'])}){more} | {note['extent']} | {w:g}-{e:g} E, "
            f"{s:g}-{n:g} N; {sizes}{utm_area_km2(f):,.1f} km2 | "
            f"**{p['location_confidence']['level']}**: {note['conf']} | {note['basis']}{grid} |"
        )
    return "\n".join(rows)


def control_table(collection: dict[str, Any]) -> str:
    by_id = {f["properties"]["id"]: f for f in collection["features"]}
    rows = [
        "| control | named place (coordinate as published, source) | serves (centre to centre) | nearest watched boundary |",
        "|---|---|---|---|",
    ]
    for f in collection["features"]:
        p = f["properties"]
        if p["kind"] != "control":
            continue
        published = p["points"][0]["meaning"].split("(", 1)[1].split(")", 1)[0]
        served = ", ".join(
            f"`{sid}` {_km(_centre(f), _centre(by_id[sid])):.0f} km" for sid in p["control_for"]
        )
        gaps = {
            sid: boundary_gap_km(f, g)
            for sid, g in by_id.items()
            if g["properties"]["kind"] != "control"
        }
        nearest = min(gaps, key=lambda sid: (gaps[sid], sid))
        rows.append(
            f"| `{p['id']}` | {p['name']} ({published}, {p['sources'][0]}) | {served} | "
            f"`{nearest}` {gaps[nearest]:.1f} km |"
        )
    return "\n".join(rows)


def added_sources_list() -> str:
    return "\n".join(f"- {url}: {entry['what']}" for url, entry in ADDED_SOURCES.items())


def readme_text(collection: dict[str, Any], current: str) -> str:
    """``current`` with the generated blocks replaced."""
    text = current
    for name, body in (
        ("site-table", site_table(collection)),
        ("control-table", control_table(collection)),
        ("added-sources", added_sources_list()),
    ):
        start = f"<!-- {name}:start (generated by aoi/build_dprk_sites.py; do not edit) -->"
        end = f"<!-- {name}:end -->"
        if start not in text or end not in text:
            raise ValueError(f"{README}: markers for the {name} block are missing")
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{body}\n{end}{tail}"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="only check that the files are current"
    )
    args = parser.parse_args(argv)
    collection = build()
    outputs = {
        SITE_FILE: geojson_text(collection),
        README: readme_text(collection, README.read_text(encoding="utf-8")),
    }
    stale = [
        path
        for path, text in outputs.items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    if args.check:
        for path in stale:
            sys.stderr.write(f"{path} is not what {Path(__file__).name} builds; run it\n")
        return 1 if stale else 0
    for path in stale:
        path.write_text(outputs[path], encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
