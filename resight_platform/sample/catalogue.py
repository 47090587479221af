"""Static reference data for the sample: a product universe, US places, and partner spellings.

Everything here is fixed (independent of the seed); the seed only decides which provider carries
what. Every spelling a profile writes must resolve through the mapping tables; ``check_aliases``
proves it at generation time.
"""

from __future__ import annotations

import string
import zlib
from dataclasses import dataclass
from functools import cache

from resight_platform.sources.mappings import Mappings, normalise_alias, vocabulary

__all__ = [
    "CITIES",
    "PROFILE_STYLES",
    "STATE_POPULATION",
    "Product",
    "ProfileStyle",
    "brand_aliases",
    "check_aliases",
    "product_universe",
]

SPECIES: tuple[str, ...] = vocabulary().ordered("species")
#: The categories products are made in (every one but ``other``, what an unmapped category becomes).
CATEGORIES: tuple[str, ...] = tuple(c for c in vocabulary().ordered("categories") if c != "other")
UNITS = ("lb", "oz", "kg", "g", "ct", "l", "ml")


@dataclass(frozen=True)
class Product:
    """One product of the universe, canonical values."""

    brand: str
    category: str
    species: str
    name: str
    pack_size: float | None
    pack_unit: str | None
    base_cents: int
    upc: str


_DOG = ("Chicken & Rice", "Lamb & Rice", "Salmon & Sweet Potato", "Beef & Barley", "Turkey & Oatmeal")
_CAT = ("Chicken", "Salmon", "Tuna", "Turkey", "Ocean Fish")
_SIZES = ("Small", "Medium", "Large", "X-Large")

Pack = tuple[float | None, str | None, int]

# (brand, category, species, product lines, variants, packs (size, unit, base price in cents))
_TEMPLATES: tuple[tuple[str, str, str, tuple[str, ...], tuple[str, ...], tuple[Pack, ...]], ...] = (
    (
        "Purina Pro Plan",
        "food",
        "dog",
        ("Adult Dry Dog Food", "Puppy Dry Dog Food", "Sensitive Skin & Stomach Dog Food", "Sport 30/20 Dog Food"),
        _DOG,
        ((6, "lb", 1899), (18, "lb", 4299), (35, "lb", 6999)),
    ),
    (
        "Purina Pro Plan",
        "food",
        "cat",
        ("Adult Dry Cat Food", "Kitten Dry Cat Food"),
        _CAT,
        ((3.5, "lb", 1399), (7, "lb", 2499), (16, "lb", 4599)),
    ),
    (
        "Purina ONE",
        "food",
        "dog",
        ("SmartBlend Dry Dog Food", "Plus Healthy Weight Dog Food"),
        _DOG,
        ((8, "lb", 1599), (16.5, "lb", 2799), (31.1, "lb", 4299)),
    ),
    (
        "Purina ONE",
        "food",
        "cat",
        ("Indoor Advantage Cat Food", "Sensitive Skin Cat Food"),
        _CAT,
        ((3.5, "lb", 1099), (7, "lb", 1899), (16, "lb", 3299)),
    ),
    (
        "Fancy Feast",
        "food",
        "cat",
        ("Classic Pate Wet Cat Food", "Gravy Lovers Wet Cat Food", "Medleys Wet Cat Food"),
        _CAT,
        ((3, "oz", 129), (24, "ct", 2599), (85, "g", 129)),
    ),
    (
        "Tidy Cats",
        "litter",
        "cat",
        (
            "Clumping Cat Litter",
            "Lightweight Clumping Litter",
            "Free & Clean Unscented Litter",
            "Naturally Strong Litter",
        ),
        ("",),
        ((20, "lb", 1699), (35, "lb", 2399), (40, "lb", 2699), (8.16, "kg", 2399)),
    ),
    (
        "Hill's Science Diet",
        "food",
        "dog",
        ("Adult Dry Dog Food", "Puppy Dry Dog Food", "Small Paws Dry Dog Food", "Adult 7+ Dry Dog Food"),
        _DOG,
        ((5, "lb", 2499), (15, "lb", 5699), (30, "lb", 8999)),
    ),
    (
        "Hill's Science Diet",
        "food",
        "cat",
        ("Adult Indoor Cat Food", "Hairball Control Cat Food", "Kitten Cat Food"),
        _CAT,
        ((3.5, "lb", 2299), (7, "lb", 3999), (15.5, "lb", 6499)),
    ),
    (
        "Royal Canin",
        "food",
        "dog",
        (
            "Medium Adult Dry Dog Food",
            "Small Puppy Dry Dog Food",
            "Large Adult Dry Dog Food",
            "Mini Adult Dry Dog Food",
        ),
        ("", "Digestive Care", "Weight Care"),
        ((6, "lb", 3299), (17, "lb", 7499), (30, "lb", 9999), (2, "kg", 2999)),
    ),
    (
        "Royal Canin",
        "food",
        "cat",
        ("Indoor Adult Cat Food", "Hair & Skin Care Cat Food", "Kitten Dry Cat Food"),
        ("",),
        ((3, "lb", 2499), (7, "lb", 4599), (15, "lb", 7999), (4, "kg", 5499)),
    ),
    (
        "Pedigree",
        "food",
        "dog",
        ("Complete Nutrition Dry Dog Food", "Chopped Ground Dinner Wet Dog Food"),
        _DOG,
        ((3.5, "lb", 699), (14, "lb", 1999), (30, "lb", 3299)),
    ),
    (
        "Pedigree",
        "treats",
        "dog",
        ("Dentastix Dental Treats", "Jumbone Chews", "Marrobone Biscuits"),
        ("Original", "Beef", "Chicken"),
        ((10, "ct", 699), (30, "ct", 1599), (24, "oz", 899)),
    ),
    (
        "Whiskas",
        "food",
        "cat",
        ("Meaty Selections Dry Cat Food", "Perfect Portions Wet Cat Food"),
        _CAT,
        ((3.15, "lb", 599), (12, "ct", 1099), (24, "ct", 1999)),
    ),
    (
        "Greenies",
        "treats",
        "dog",
        ("Original Dental Treats", "Pill Pockets", "Aging Care Dental Treats"),
        ("Regular", "Petite", "Teenie", "Large"),
        ((12, "oz", 1899), (27, "oz", 3599), (36, "oz", 4499)),
    ),
    (
        "Greenies",
        "treats",
        "cat",
        ("Feline Dental Treats",),
        ("Chicken", "Salmon", "Catnip", "Tuna"),
        ((2.1, "oz", 399), (4.6, "oz", 699), (9.75, "oz", 1299)),
    ),
    (
        "Blue Buffalo",
        "food",
        "dog",
        (
            "Life Protection Formula Dry Dog Food",
            "Wilderness High Protein Dog Food",
            "Basics Limited Ingredient Dog Food",
        ),
        _DOG,
        ((5, "lb", 1999), (15, "lb", 4599), (30, "lb", 6999)),
    ),
    (
        "Blue Buffalo",
        "food",
        "cat",
        ("Tastefuls Indoor Cat Food", "Wilderness Adult Cat Food"),
        _CAT,
        ((5, "lb", 1999), (11, "lb", 3599)),
    ),
    (
        "Blue Buffalo",
        "treats",
        "dog",
        ("Blue Bits Training Treats", "Dental Bones", "Health Bars"),
        ("Chicken", "Salmon", "Beef"),
        ((4, "oz", 599), (12, "oz", 1299), (16, "oz", 1599)),
    ),
    (
        "Wellness",
        "food",
        "dog",
        ("CORE Grain-Free Dog Food", "Complete Health Dry Dog Food"),
        _DOG,
        ((4, "lb", 1999), (12, "lb", 4999), (24, "lb", 7999)),
    ),
    (
        "Wellness",
        "food",
        "cat",
        ("CORE Grain-Free Cat Food", "Complete Health Pate"),
        _CAT,
        ((2, "lb", 1299), (5, "lb", 2599), (12, "ct", 2399)),
    ),
    (
        "KONG",
        "toys",
        "dog",
        ("Classic Dog Toy", "Extreme Dog Toy", "Wild Knots Bear", "Squeezz Ball"),
        _SIZES,
        ((1, "ct", 999), (None, None, 1399), (2, "ct", 1799)),
    ),
    (
        "KONG",
        "toys",
        "cat",
        ("Kickeroo Cat Toy", "Active Cat Ball", "Refillables Catnip Toy"),
        ("",),
        ((1, "ct", 599), (3, "ct", 999), (None, None, 699)),
    ),
    (
        "Frontline",
        "health",
        "dog",
        ("Plus Flea & Tick Treatment for Dogs",),
        ("5-22 lb", "23-44 lb", "45-88 lb", "89-132 lb"),
        ((3, "ct", 4999), (6, "ct", 8999)),
    ),
    (
        "Frontline",
        "health",
        "cat",
        ("Plus Flea & Tick Treatment for Cats", "Gold Flea & Tick for Cats"),
        ("",),
        ((3, "ct", 4799), (6, "ct", 8599)),
    ),
    (
        "NexGard",
        "health",
        "dog",
        ("Chewables for Dogs", "PLUS Chewables for Dogs"),
        ("4-10 lb", "10.1-24 lb", "24.1-60 lb", "60.1-121 lb"),
        ((3, "ct", 6999), (6, "ct", 12999)),
    ),
    (
        "Tetra",
        "food",
        "fish",
        ("TetraMin Tropical Flakes", "Goldfish Flakes", "Pro Energy Crisps", "Pond Sticks"),
        ("",),
        ((1, "oz", 499), (2.2, "oz", 899), (7.06, "oz", 1999), (200, "g", 1499)),
    ),
    (
        "Tetra",
        "supplies",
        "fish",
        ("Whisper Power Filter", "Aquarium Air Pump", "AquaSafe Water Conditioner"),
        ("10 Gallon", "20 Gallon", "40 Gallon"),
        ((1, "ct", 2499), (250, "ml", 1299)),
    ),
    (
        "Kaytee",
        "food",
        "bird",
        ("Forti-Diet Pro Health Parakeet Food", "Wild Bird Food", "Fiesta Cockatiel Food"),
        ("",),
        ((2, "lb", 599), (5, "lb", 1299), (20, "lb", 2999)),
    ),
    (
        "Kaytee",
        "food",
        "small_animal",
        ("Timothy Hay", "Forti-Diet Rabbit Food", "Guinea Pig Food"),
        ("",),
        ((24, "oz", 899), (5, "lb", 1599), (96, "oz", 2199)),
    ),
    (
        "Kaytee",
        "supplies",
        "small_animal",
        ("Clean & Cozy Bedding",),
        ("White", "Natural", "Lavender"),
        ((24.6, "l", 1999), (49.2, "l", 3299)),
    ),
    (
        "Nylabone",
        "treats",
        "dog",
        ("Healthy Edibles Chews",),
        ("Bacon", "Chicken", "Roast Beef"),
        ((4, "ct", 699), (8, "ct", 1199)),
    ),
    (
        "Nylabone",
        "toys",
        "dog",
        ("Power Chew Dog Toy", "Puppy Chew Teething Ring"),
        ("Small", "Medium", "Large"),
        ((1, "ct", 899), (2, "ct", 1499)),
    ),
    (
        "Arm & Hammer",
        "litter",
        "cat",
        ("Clump & Seal Cat Litter", "Slide Easy Clean-Up Litter"),
        ("",),
        ((14, "lb", 1399), (28, "lb", 2299), (40, "lb", 2799)),
    ),
    (
        "Arm & Hammer",
        "grooming",
        "dog",
        ("Super Deodorizing Dog Shampoo", "Dental Toothpaste for Dogs"),
        ("Kiwi Blossom", "Vanilla Ginger"),
        ((20, "oz", 599), (2.5, "oz", 499)),
    ),
    (
        "Arm & Hammer",
        "supplies",
        "other",
        ("Pet Stain & Odor Remover", "Litter Deodorizer"),
        ("",),
        ((32, "oz", 799), (1, "l", 999)),
    ),
    (
        "Zoo Med",
        "food",
        "reptile",
        ("Natural Bearded Dragon Food", "Aquatic Turtle Food"),
        ("Adult", "Juvenile"),
        ((10, "oz", 1099), (283, "g", 1099)),
    ),
    (
        "Zoo Med",
        "supplies",
        "reptile",
        ("ReptiSun UVB Bulb", "Repti Basking Spot Lamp", "Eco Earth Substrate"),
        ("",),
        ((1, "ct", 2999), (8, "l", 1299)),
    ),
    (
        "Zoo Med",
        "health",
        "reptile",
        ("ReptiVite Vitamins", "Repti Calcium with D3", "ReptiSafe Conditioner"),
        ("",),
        ((2, "oz", 899), (8, "oz", 1699), (66, "ml", 599)),
    ),
    (
        "Hill's Science Diet",
        "health",
        "dog",
        ("Prescription Diet i/d Digestive Care", "Prescription Diet k/d Kidney Care"),
        ("",),
        ((8.5, "lb", 4999), (27.5, "lb", 10999)),
    ),
    (
        "Royal Canin",
        "health",
        "cat",
        ("Veterinary Diet Urinary SO", "Veterinary Diet Renal Support"),
        ("",),
        ((3, "kg", 5999), (8.8, "lb", 7499)),
    ),
)


def _upc(brand: str, item: int) -> str:
    """A 12-digit UPC-A with a valid check digit; the company prefix is derived from the brand."""
    prefix = 100_000 + zlib.crc32(brand.encode()) % 900_000
    body = f"0{prefix:06d}{item:04d}"[-11:]
    odd = sum(int(d) for d in body[0::2])
    even = sum(int(d) for d in body[1::2])
    check = (10 - (odd * 3 + even) % 10) % 10
    return body + str(check)


def _pack_text(size: float) -> str:
    return f"{size:g}"


@cache
def product_universe() -> tuple[Product, ...]:
    """Every product any provider can carry, in a fixed order."""
    products: list[Product] = []
    per_brand: dict[str, int] = {}
    for brand, category, species, lines, variants, packs in _TEMPLATES:
        for line in lines:
            for variant in variants:
                for size, unit, cents in packs:
                    item = per_brand.get(brand, 0)
                    per_brand[brand] = item + 1
                    pack = f" {_pack_text(size)} {unit}" if size is not None and unit is not None else ""
                    name = f"{brand} {line}" + (f", {variant}" if variant else "") + pack
                    bump = 1.0 + 0.04 * (len(variant) % 4)
                    products.append(
                        Product(
                            brand,
                            category,
                            species,
                            name,
                            None if size is None else float(size),
                            unit,
                            round(cents * bump / 50.0) * 50 - 1,
                            _upc(brand, item),
                        )
                    )
    return tuple(products)


# (city, state, 3-digit zip prefix); a few carry accents, which latin-1 files must encode.
CITIES: tuple[tuple[str, str, str], ...] = (
    ("New York", "NY", "100"),
    ("Brooklyn", "NY", "112"),
    ("Buffalo", "NY", "142"),
    ("Albany", "NY", "122"),
    ("Boston", "MA", "021"),
    ("Worcester", "MA", "016"),
    ("Springfield", "MA", "011"),
    ("Hartford", "CT", "061"),
    ("New Haven", "CT", "065"),
    ("Providence", "RI", "029"),
    ("Burlington", "VT", "054"),
    ("Portland", "ME", "041"),
    ("Manchester", "NH", "031"),
    ("Newark", "NJ", "071"),
    ("Jersey City", "NJ", "073"),
    ("Trenton", "NJ", "086"),
    ("Philadelphia", "PA", "191"),
    ("Pittsburgh", "PA", "152"),
    ("Allentown", "PA", "181"),
    ("Chicago", "IL", "606"),
    ("Naperville", "IL", "605"),
    ("Springfield", "IL", "627"),
    ("Indianapolis", "IN", "462"),
    ("Fort Wayne", "IN", "468"),
    ("Detroit", "MI", "482"),
    ("Grand Rapids", "MI", "495"),
    ("Ann Arbor", "MI", "481"),
    ("Columbus", "OH", "432"),
    ("Cleveland", "OH", "441"),
    ("Cincinnati", "OH", "452"),
    ("Milwaukee", "WI", "532"),
    ("Madison", "WI", "537"),
    ("Des Moines", "IA", "503"),
    ("Wichita", "KS", "672"),
    ("Minneapolis", "MN", "554"),
    ("Saint Paul", "MN", "551"),
    ("Kansas City", "MO", "641"),
    ("St. Louis", "MO", "631"),
    ("Omaha", "NE", "681"),
    ("Fargo", "ND", "581"),
    ("Sioux Falls", "SD", "571"),
    ("Wilmington", "DE", "198"),
    ("Washington", "DC", "200"),
    ("Miami", "FL", "331"),
    ("Orlando", "FL", "328"),
    ("Tampa", "FL", "336"),
    ("Jacksonville", "FL", "322"),
    ("Atlanta", "GA", "303"),
    ("Savannah", "GA", "314"),
    ("Baltimore", "MD", "212"),
    ("Charlotte", "NC", "282"),
    ("Raleigh", "NC", "276"),
    ("Charleston", "SC", "294"),
    ("Columbia", "SC", "292"),
    ("Richmond", "VA", "232"),
    ("Virginia Beach", "VA", "234"),
    ("Charleston", "WV", "253"),
    ("Birmingham", "AL", "352"),
    ("Louisville", "KY", "402"),
    ("Jackson", "MS", "392"),
    ("Nashville", "TN", "372"),
    ("Memphis", "TN", "381"),
    ("Little Rock", "AR", "722"),
    ("New Orleans", "LA", "701"),
    ("Baton Rouge", "LA", "708"),
    ("Oklahoma City", "OK", "731"),
    ("Tulsa", "OK", "741"),
    ("Houston", "TX", "770"),
    ("Dallas", "TX", "752"),
    ("Austin", "TX", "787"),
    ("San Antonio", "TX", "782"),
    ("El Paso", "TX", "799"),
    ("Phoenix", "AZ", "850"),
    ("Tucson", "AZ", "857"),
    ("Scottsdale", "AZ", "852"),
    ("Denver", "CO", "802"),
    ("Colorado Springs", "CO", "809"),
    ("Cañon City", "CO", "812"),
    ("Boise", "ID", "837"),
    ("Coeur d'Alene", "ID", "838"),
    ("Billings", "MT", "591"),
    ("Las Vegas", "NV", "891"),
    ("Reno", "NV", "895"),
    ("Albuquerque", "NM", "871"),
    ("Santa Fe", "NM", "875"),
    ("Española", "NM", "875"),
    ("Salt Lake City", "UT", "841"),
    ("Cheyenne", "WY", "820"),
    ("Anchorage", "AK", "995"),
    ("Los Angeles", "CA", "900"),
    ("San Diego", "CA", "921"),
    ("San Francisco", "CA", "941"),
    ("Sacramento", "CA", "958"),
    ("La Cañada Flintridge", "CA", "910"),
    ("San José", "CA", "951"),
    ("Honolulu", "HI", "968"),
    ("Portland", "OR", "972"),
    ("Eugene", "OR", "974"),
    ("Seattle", "WA", "981"),
    ("Spokane", "WA", "992"),
)

# Approximate population in millions: weights for online ship-to states and customers.
STATE_POPULATION: dict[str, float] = {
    "CA": 39.0,
    "TX": 30.0,
    "FL": 22.0,
    "NY": 19.6,
    "PA": 13.0,
    "IL": 12.5,
    "OH": 11.8,
    "GA": 11.0,
    "NC": 10.7,
    "MI": 10.0,
    "NJ": 9.3,
    "VA": 8.7,
    "WA": 7.8,
    "AZ": 7.4,
    "TN": 7.1,
    "MA": 7.0,
    "IN": 6.8,
    "MO": 6.2,
    "MD": 6.2,
    "WI": 5.9,
    "CO": 5.8,
    "MN": 5.7,
    "SC": 5.3,
    "AL": 5.1,
    "LA": 4.6,
    "KY": 4.5,
    "OR": 4.2,
    "OK": 4.0,
    "CT": 3.6,
    "UT": 3.4,
    "IA": 3.2,
    "NV": 3.2,
    "AR": 3.0,
    "MS": 2.9,
    "KS": 2.9,
    "NM": 2.1,
    "NE": 2.0,
    "ID": 1.9,
    "WV": 1.8,
    "HI": 1.4,
    "NH": 1.4,
    "ME": 1.4,
    "MT": 1.1,
    "RI": 1.1,
    "DE": 1.0,
    "SD": 0.9,
    "ND": 0.8,
    "AK": 0.7,
    "DC": 0.7,
    "VT": 0.6,
    "WY": 0.6,
}


@dataclass(frozen=True)
class ProfileStyle:
    """How one export profile spells canonical values. Every spelling resolves in the mappings."""

    status: tuple[str, str, str]  # completed, cancelled, returned
    channels: tuple[tuple[str, str], ...]  # (store, online) variants; one per provider
    species: dict[str, tuple[str, ...]]  # first = catalog spelling, all = customer spellings
    categories: dict[str, tuple[str, ...]]
    units: dict[str, str]
    brand_case: str  # "upper", "words", "mixed" (any alias, any case, stray spaces)
    name_case: str  # "upper" (truncated to 30) or "as_is"
    order_prefix: str
    sku_format: str
    store_format: str
    customer_format: str


def _species(*pairs: tuple[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    return dict(pairs)


PROFILE_STYLES: dict[str, ProfileStyle] = {
    "standard_csv": ProfileStyle(
        status=("completed", "cancelled", "returned"),
        channels=(("store", "online"), ("in-store", "web"), ("POS", "ecom"), ("Retail", "E-Commerce")),
        species=_species(
            ("dog", ("dog", "Dog", "puppy")),
            ("cat", ("cat", "Cat", "kitten")),
            ("bird", ("bird", "Bird")),
            ("fish", ("fish", "Fish")),
            ("small_animal", ("small animal", "Small Animal")),
            ("reptile", ("reptile", "Reptile")),
            ("other", ("other",)),
        ),
        categories={
            "food": ("Food", "Dry Food", "Wet Food"),
            "treats": ("Treats",),
            "litter": ("Litter",),
            "toys": ("Toys",),
            "health": ("Health",),
            "supplies": ("Supplies",),
            "grooming": ("Grooming",),
        },
        units={"lb": "lb", "oz": "oz", "kg": "kg", "g": "g", "ct": "ct", "l": "L", "ml": "ml"},
        brand_case="words",
        name_case="as_is",
        order_prefix="{code}-",
        sku_format="{code}-{n:06d}",
        store_format="S{n:05d}",
        customer_format="C{n:08d}",
    ),
    "legacy_pos": ProfileStyle(
        status=("C", "X", "R"),
        channels=(("store", "online"),),
        species=_species(
            ("dog", ("K9", "CANINE")),
            ("cat", ("FELINE", "CAT")),
            ("bird", ("AVIAN",)),
            ("fish", ("AQUATIC",)),
            ("small_animal", ("SMALL PET",)),
            ("reptile", ("HERP",)),
            ("other", ("MULTI",)),
        ),
        categories={
            "food": ("DRY FOOD", "WET FOOD"),
            "treats": ("TREATS", "CHEWS"),
            "litter": ("CAT LITTER",),
            "toys": ("TOYS",),
            "health": ("PHARMACY", "FLEA & TICK"),
            "supplies": ("ACCESSORIES",),
            "grooming": ("GROOMING",),
        },
        units={"lb": "LBS", "oz": "OZ", "kg": "KG", "g": "G", "ct": "PK", "l": "L", "ml": "ML"},
        brand_case="upper",
        name_case="upper",
        order_prefix="",
        sku_format="{n:06d}",
        store_format="{n:05d}",
        customer_format="{n:09d}",
    ),
    "shop_export": ProfileStyle(
        status=("fulfilled", "canceled", "refunded"),
        channels=(("store", "online"),),
        species=_species(
            ("dog", ("Dogs", "Dog", "Puppy")),
            ("cat", ("Cats", "Cat", "Kitten")),
            ("bird", ("Birds",)),
            ("fish", ("Fish", "Aquarium")),
            ("small_animal", ("Small Pets", "Rabbit")),
            ("reptile", ("Reptiles",)),
            ("other", ("All Pets",)),
        ),
        categories={
            "food": ("Food", "Kibble"),
            "treats": ("Treats", "Snacks"),
            "litter": ("Litter & Waste",),
            "toys": ("Toys", "Play"),
            "health": ("Health & Wellness", "Supplements"),
            "supplies": ("Accessories", "Bedding"),
            "grooming": ("Grooming",),
        },
        units={"lb": "pounds", "oz": "ounces", "kg": "kilogram", "g": "grams", "ct": "count", "l": "liter", "ml": "ml"},
        brand_case="mixed",
        name_case="as_is",
        order_prefix="#{code}",
        sku_format="{code}{n:06d}",
        store_format="WH{n:05d}",
        customer_format="cus_{n:08d}",
    ),
    "marketplace_json": ProfileStyle(
        status=("PAID", "CANCELED", "REFUNDED"),
        channels=(("store", "online"),),
        species=_species(
            ("dog", ("dog", "canine")),
            ("cat", ("cat", "feline")),
            ("bird", ("bird",)),
            ("fish", ("fish",)),
            ("small_animal", ("small_animal",)),
            ("reptile", ("reptile",)),
            ("other", ("other",)),
        ),
        categories={
            "food": ("food",),
            "treats": ("treats", "chews"),
            "litter": ("litter",),
            "toys": ("toys",),
            "health": ("health", "flea & tick"),
            "supplies": ("supplies", "aquarium supplies"),
            "grooming": ("grooming",),
        },
        units={"lb": "lb", "oz": "oz", "kg": "kg", "g": "g", "ct": "pk", "l": "l", "ml": "ml"},
        brand_case="mixed",
        name_case="as_is",
        order_prefix="{code}",
        sku_format="MKT-{n:06d}",
        store_format="W{n:05d}",
        customer_format="B{n:08d}",
    ),
    "distributor_parquet": ProfileStyle(
        status=("COMPLETED", "CANCELLED", "RETURNED"),
        channels=(("store", "online"),),
        species=_species(
            ("dog", ("CANINE",)),
            ("cat", ("FELINE",)),
            ("bird", ("BIRD",)),
            ("fish", ("FISH",)),
            ("small_animal", ("SMALL ANIMAL",)),
            ("reptile", ("REPTILE",)),
            ("other", ("OTHER",)),
        ),
        categories={
            "food": ("FOOD",),
            "treats": ("TREATS",),
            "litter": ("LITTER",),
            "toys": ("TOYS",),
            "health": ("HEALTH",),
            "supplies": ("SUPPLIES",),
            "grooming": ("GROOMING",),
        },
        units={"lb": "LB", "oz": "OZ", "kg": "KG", "g": "G", "ct": "CT", "l": "L", "ml": "ML"},
        brand_case="upper",
        name_case="upper",
        order_prefix="INV-",
        sku_format="{n:07d}",
        store_format="ACCT{n:06d}",
        customer_format="D{n:08d}",
    ),
    "vet_gz": ProfileStyle(
        status=("Complete", "Void", "Refunded"),
        channels=(("store", "online"),),
        species=_species(
            ("dog", ("Canine", "Dog")),
            ("cat", ("Feline", "Cat")),
            ("bird", ("Avian",)),
            ("fish", ("Aquatic",)),
            ("small_animal", ("Rabbit", "Small Pet")),
            ("reptile", ("Reptile",)),
            ("other", ("Other",)),
        ),
        categories={
            "food": ("Food",),
            "treats": ("Treats",),
            "litter": ("Litter",),
            "toys": ("Toys",),
            "health": ("Pharmacy", "Supplements"),
            "supplies": ("Supplies",),
            "grooming": ("Grooming",),
        },
        units={"lb": "lb", "oz": "oz", "kg": "kg", "g": "g", "ct": "each", "l": "litre", "ml": "ml"},
        brand_case="words",
        name_case="as_is",
        order_prefix="V{code}-",
        sku_format="RX{n:06d}",
        store_format="CL{n:05d}",
        customer_format="CLI{n:08d}",
    ),
}

#: Styles for profiles added to the registry later: plain canonical spellings.
DEFAULT_STYLE = PROFILE_STYLES["standard_csv"]


def brand_aliases(mappings: Mappings) -> dict[str, tuple[str, ...]]:
    """Canonical brand -> its aliases from brands.csv (normalised), canonical spelling first."""
    by_brand: dict[str, list[str]] = {}
    for alias, (brand, _manufacturer) in mappings.brands.items():
        by_brand.setdefault(brand, []).append(alias)
    return {
        brand: tuple(sorted(aliases, key=lambda a: (a != normalise_alias(brand), a)))
        for brand, aliases in by_brand.items()
    }


def words(alias: str) -> str:
    """``"hill's science diet"`` -> ``"Hill's Science Diet"`` (no capital after an apostrophe)."""
    return string.capwords(alias)


def check_aliases(mappings: Mappings) -> None:
    """Raise ``ValueError`` if any spelling a profile writes does not resolve in the mappings."""
    problems: list[str] = []
    for name, style in PROFILE_STYLES.items():
        for value, canonical in zip(style.status, ("completed", "cancelled", "returned"), strict=True):
            if mappings.status.get(normalise_alias(value)) != canonical:
                problems.append(f"{name}: status {value!r}")
        for pair in style.channels:
            for value, canonical in zip(pair, ("store", "online"), strict=True):
                if mappings.channels.get(normalise_alias(value)) != canonical:
                    problems.append(f"{name}: channel {value!r}")
        for canonical, spellings in style.species.items():
            problems += [
                f"{name}: species {v!r}" for v in spellings if mappings.species.get(normalise_alias(v)) != canonical
            ]
        for canonical, spellings in style.categories.items():
            problems += [
                f"{name}: category {v!r}" for v in spellings if mappings.categories.get(normalise_alias(v)) != canonical
            ]
        problems += [
            f"{name}: unit {v!r}"
            for canonical, v in style.units.items()
            if mappings.units.get(normalise_alias(v)) != canonical
        ]
    known = {brand for brand, _ in mappings.brands.values()}
    problems += [f"brand {p.brand!r} not in brands.csv" for p in product_universe() if p.brand not in known]
    if problems:
        raise ValueError("sample spellings that do not resolve: " + "; ".join(sorted(set(problems))))
