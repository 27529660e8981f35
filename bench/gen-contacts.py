#!/usr/bin/env python3
"""Generate N fictional patient contacts as an outreach contacts CSV, for the benchmark.

    python3 bench/gen-contacts.py OUT.csv [-n 100000] [--seed 2026]

Deterministic: the same N and seed give the same file, byte for byte. Standard library only.

The columns are those of contacts/sample.csv
(id,first_name,last_name,email,phone,channel,email_consent,sms_consent,timezone), and the mix is
like the sample's, but with every row usable:

* names: mostly plain English ones, some with accents (María, Zoë, Nuñez), apostrophes
  (O'Brien, D'Angelo), hyphens, a comma that needs quoting ("Nguyen, Jr."), an ampersand, and a
  few empty first names (templates fall back to "there");
* emails: unique per row (an ascii-folded name plus the row number), at example.com or
  mail.example.com (reserved for examples, RFC 2606), sometimes in mixed case;
* phones: unique per row, written in the sample's forms ((312) 555-0142, 773.555.0118,
  +1 303 555 0163, 415-555-0104, 2125550187). The fictional 555-0100..0199 block gives only 100
  numbers per area code, too few for 100,000 unique rows, so the numbers are real US area codes
  with an exchange 200-999 that is neither 555 nor an N11 code, and any 4-digit line number.
  Google's libphonenumber accepts them all as valid US numbers (checked with the `phonenumbers`
  package for every area code and exchange used here). They are drawn at random and may belong to
  somebody: use this file for dry runs (`outreach check`, mailmerge --dry-run) only, never to send;
* channel: mostly empty or "both" (both channels), a few "email" or "sms" only;
* consent: given for most (yes, Yes, y, true, TRUE, 1, x or a date), refused or empty for a few;
* timezone: the US zones of the sample, sometimes empty (the clinic's zone applies).
"""

import argparse
import csv
import random
import sys
import unicodedata

FIRST_NAMES = [
    # plain (weighted up by repetition below)
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Christopher", "Lisa", "Daniel", "Nancy", "Matthew", "Betty", "Anthony",
    "Margaret", "Mark", "Sandra", "Donald", "Ashley", "Steven", "Emily", "Andrew", "Donna", "Paul",
    "Michelle", "Joshua", "Carol", "Kevin", "Amanda", "Brian", "Melissa", "George", "Deborah",
    "Timothy", "Stephanie", "Ronald", "Rebecca", "Jason", "Laura", "Ryan", "Helen", "Jacob",
    "Sharon", "Gary", "Cynthia", "Nicholas", "Kathleen", "Eric", "Amy", "Jonathan", "Angela",
    "Olivia", "Noah", "Ava", "Ethan", "Sophia", "Hannah", "Grace", "Minh", "Keanu", "Leilani",
    "Mele", "Priya", "Wei", "Aisha", "Omar", "Yuki", "Hiroshi", "Fatima", "Dmitri", "Ingrid",
]
FIRST_NAMES_SPECIAL = [
    "María", "José", "Zoë", "François", "Renée", "Siobhan", "Chloé", "Björn", "Søren", "Inés",
    "Łukasz", "Ana-Sofía", "Mary-Elizabeth", "Jean-Luc", "D'Shawn", "Ann & Bob", "Noël",
    "Agnieszka", "Héctor", "Raúl", "Ángel", "Joël", "Anaïs", "Şebnem", "Thảo",
]
LAST_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall",
    "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Kim", "Park", "Chen", "Patel",
    "Kowalski", "Schmidt", "Rossi", "Kahale", "Akana", "Kealoha", "Whitfield", "Kessler",
]
LAST_NAMES_SPECIAL = [
    "González", "Ramírez", "Nuñez", "O'Brien", "D'Angelo", "O'Connor", "Dubois", "Lachance",
    "Carter-Hayes", "Nguyen, Jr.", "Müller", "Søndergaard", "Wójcik", "Çelik", "Ó Súilleabháin",
    "de la Cruz", "Van der Berg", "St. John", "Smith-Jones", "Brontë", "Dvořák",
]

# Real US area codes, each with the IANA zone it is in (most patients live near the clinic).
AREAS = [
    (312, "America/Chicago", 14), (773, "America/Chicago", 12), (872, "America/Chicago", 3),
    (847, "America/Chicago", 6), (630, "America/Chicago", 6), (708, "America/Chicago", 5),
    (224, "America/Chicago", 3), (331, "America/Chicago", 2),
    (212, "America/New_York", 4), (646, "America/New_York", 3), (718, "America/New_York", 3),
    (617, "America/New_York", 2), (303, "America/Denver", 3), (720, "America/Denver", 2),
    (415, "America/Los_Angeles", 3), (510, "America/Los_Angeles", 2),
    (213, "America/Los_Angeles", 2), (206, "America/Los_Angeles", 2),
    (602, "America/Phoenix", 2), (480, "America/Phoenix", 1), (808, "Pacific/Honolulu", 1),
]
# Exchanges 200-999 except 555 (reserved for fiction/directory) and N11 (service codes).
EXCHANGES = [e for e in range(200, 1000) if e != 555 and e % 100 != 11]
NUMBERS_PER_AREA = len(EXCHANGES) * 10_000

YES = ["yes"] * 10 + ["Yes", "y", "Y", "true", "TRUE", "1", "x", "2025-03-14", "2024-11-02"]
NO = ["no", "", "n", "false", "0"]


def ascii_fold(s: str) -> str:
    """'María O'Brien' -> 'maria obrien': the local part of a made-up address."""
    s = s.replace("ø", "o").replace("Ø", "O").replace("ł", "l").replace("Ł", "L")
    s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode()
    return "".join(c for c in s.lower() if c.isalnum())


def phone_text(rng: random.Random, area: int, exchange: int, line: int) -> str:
    forms = [
        "({a}) {e}-{l}", "({a}) {e}-{l}", "{a}-{e}-{l}", "{a}-{e}-{l}", "{a}.{e}.{l}",
        "+1 {a} {e} {l}", "{a}{e}{l}", "1-{a}-{e}-{l}",
    ]
    return rng.choice(forms).format(a=area, e=exchange, l=f"{line:04d}")


def generate(n: int, seed: int, out) -> None:
    rng = random.Random(seed)
    area_weights = [w for _, _, w in AREAS]
    # Unique phones: a sample without replacement of the whole (area, exchange, line) space.
    space = len(AREAS) * NUMBERS_PER_AREA
    if n > space:
        sys.exit(f"at most {space} unique phone numbers")
    # Weighted areas and uniqueness together: pick the area by weight, then draw an unused
    # (exchange, line) inside it; collisions are rare (n << NUMBERS_PER_AREA) and retried.
    used = set()

    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "first_name", "last_name", "email", "phone", "channel",
                     "email_consent", "sms_consent", "timezone"])
    width = max(4, len(str(n)))
    for i in range(1, n + 1):
        r = rng.random()
        if r < 0.01:
            first = ""
        elif r < 0.11:
            first = rng.choice(FIRST_NAMES_SPECIAL)
        else:
            first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES_SPECIAL) if rng.random() < 0.10 else rng.choice(LAST_NAMES)

        local = ".".join(p for p in (ascii_fold(first), ascii_fold(last)) if p) or "patient"
        domain = "mail.example.com" if rng.random() < 0.15 else "example.com"
        email = f"{local}.{i}@{domain}"
        if rng.random() < 0.03:
            email = email.title().replace("Example.Com", "Example.COM")

        area_index = rng.choices(range(len(AREAS)), weights=area_weights)[0]
        area, zone, _ = AREAS[area_index]
        while True:
            k = rng.randrange(NUMBERS_PER_AREA)
            if (area_index, k) not in used:
                used.add((area_index, k))
                break
        exchange, line = EXCHANGES[k // 10_000], k % 10_000
        phone = phone_text(rng, area, exchange, line)

        r = rng.random()
        channel = "" if r < 0.48 else "both" if r < 0.90 else "email" if r < 0.95 else "sms"
        email_consent = rng.choice(NO) if rng.random() < 0.04 else rng.choice(YES)
        sms_consent = rng.choice(NO) if rng.random() < 0.06 else rng.choice(YES)
        if channel == "email" and rng.random() < 0.5:
            sms_consent = ""
        if channel == "sms" and rng.random() < 0.5:
            email_consent = ""
        timezone = "" if rng.random() < 0.08 else zone

        writer.writerow([f"P{i:0{width}d}", first, last, email, phone, channel,
                         email_consent, sms_consent, timezone])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="the CSV to write ('-' for stdout)")
    ap.add_argument("-n", "--count", type=int, default=100_000, help="contacts (100000)")
    ap.add_argument("--seed", type=int, default=2026, help="random seed (2026)")
    args = ap.parse_args()
    if args.out == "-":
        generate(args.count, args.seed, sys.stdout)
    else:
        with open(args.out, "w", encoding="utf-8", newline="") as f:
            generate(args.count, args.seed, f)


if __name__ == "__main__":
    main()
