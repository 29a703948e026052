"""Memory texts for the bench: first-person facts as mem0 stores them, one persona per user.

mem0 keeps short facts extracted from a conversation, with the user as the implied subject:
"Prefers window seats on long flights", "Allergic to peanuts", "Daughter's birthday is on
3 May", "Working on the Q3 budget review with Priya". This module writes such texts from
templates and slot values, deterministically from a seed (random.Random, no numpy).

Each user has a persona, drawn once from the seed and the user number: a few topics out of
`TOPICS` (travel, food, family, work, ...) with weights, fixed facts (a city, an employer, a
partner's and a child's name, a pet, an allergy) and small pools that most of their slots
of that kind draw from (three colleagues, two sports, a few favourite foods). A user's
memories come only from their topics and repeat their names, so a user's nearest neighbours
in embedding space are about the same things, as with real users; different users share
topics but not names. Within a user a text is not repeated while a fresh one can be found.
At 100,000 memories over 100 users, 87% of the texts are distinct (bare short facts such as
"Sleeps about six hours a night" recur across users, as in a real store) and all within
each user; among one user's memories embedded with components.bench.minilm, the nearest to
a memory is on its topic 85% of the time (27% by chance). Generating 100,000 takes 3 s.

Text k belongs to user k mod `users`, as the bench's generated rows (components.bench.data)
do, and is that user's (k div users)-th draw: the first N texts are the same whatever
`count` is asked for, given the same seed and users.
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass

from components.bench.common import DEFAULT_SEED

__all__ = ["TOPICS", "Memory", "Persona", "generate_memories", "memory_texts", "persona",
           "user_memories"]


def _numbers(lo: int, hi: int, step: int = 1, fmt: str = "{:,}") -> tuple[str, ...]:
    """Numbers lo..hi (inclusive) as slot values, with thousands separators by default."""
    return tuple(fmt.format(n) for n in range(lo, hi + 1, step))


# The values a slot {name} draws from. {name2} draws a second, independent value of the
# same slot; {Name} is the value with its first letter upper-cased.
VOCABULARY: dict[str, tuple[str, ...]] = {
    "first_name": (
        "Priya", "Tom", "Aisha", "Marco", "Lena", "Kenji", "Sofia", "Daniel", "Fatima",
        "Lucas", "Mei", "Oliver", "Zara", "Mateo", "Hannah", "Ravi", "Chloe", "Jonas",
        "Amara", "Ethan", "Ingrid", "Omar", "Nina", "Samuel", "Yuki", "Grace", "Felix",
        "Leila", "Arjun", "Emma", "Diego", "Sara", "Noah", "Maya", "Erik", "Ana", "Kwame",
        "Julia", "Hugo", "Rosa", "Tariq", "Elena", "Finn", "Ines", "Malik", "Astrid"),
    "city": (
        "Lisbon", "Berlin", "Toronto", "Melbourne", "Austin", "Dublin", "Singapore",
        "Barcelona", "Manchester", "Seattle", "Amsterdam", "Cape Town", "Denver", "Oslo",
        "Edinburgh", "Montreal", "Bristol", "Munich", "Portland", "Wellington", "Leeds",
        "Lyon", "Gothenburg", "Porto"),
    "destination": (
        "Japan", "Iceland", "Portugal", "Peru", "the Amalfi Coast", "New Zealand", "Morocco",
        "Vietnam", "the Scottish Highlands", "Croatia", "Mexico City", "Norway", "Kyoto",
        "Patagonia", "Sicily", "Bali", "the Alps", "Chile", "Istanbul", "Crete",
        "Copenhagen", "Vancouver Island", "the Dolomites", "Sri Lanka", "Tasmania",
        "Cornwall", "Andalusia", "Seoul", "Lapland", "the Azores", "Quebec", "Kenya"),
    "employer": (
        "a fintech startup", "a hospital", "a design agency", "a logistics company",
        "a public library", "an insurance firm", "a university lab", "a game studio",
        "a solar energy company", "a law firm", "a bakery chain", "the city council",
        "a bike manufacturer", "a charity", "a consulting firm", "a secondary school"),
    "role": (
        "software engineer", "nurse", "product manager", "data analyst", "teacher",
        "accountant", "product designer", "civil engineer", "marketing lead", "researcher",
        "project coordinator", "sales manager", "pharmacist", "architect", "paramedic",
        "copywriter", "HR partner", "electrician", "lab technician", "operations manager"),
    "project": (
        "the Q3 budget review", "the website redesign", "the data migration",
        "the onboarding revamp", "the annual audit", "the mobile app launch",
        "the supplier contract renewal", "the hiring plan", "the grant proposal",
        "the customer survey", "the security review", "the warehouse move",
        "the pricing experiment", "the quarterly board deck", "the API deprecation",
        "the new billing system", "the office relocation", "the brand refresh",
        "the compliance training", "the Q4 forecast", "the vendor evaluation"),
    "deliverable": (
        "slides", "budget", "spec", "test plan", "status report", "rollout plan",
        "risk register", "first draft", "final numbers", "design mock-ups", "timeline"),
    "audience": (
        "the leadership team", "the board", "a client", "the whole company",
        "the design team", "investors", "the regional managers", "new starters"),
    "workplace": ("home", "the office", "a café", "the library", "a co-working space"),
    "next_job": (
        "a startup", "a job in another city", "freelancing", "a PhD", "a role with less travel",
        "a part-time job", "a management role", "a job closer to home"),
    "tech": (
        "Python", "Rust", "TypeScript", "Kubernetes", "PostgreSQL", "Power BI", "Figma",
        "React", "Go", "SQL", "Terraform", "Swift", "Excel", "Tableau", "Salesforce", "Jira"),
    "weekday": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "month": (
        "January", "February", "March", "April", "May", "June", "July", "August",
        "September", "October", "November", "December"),
    "season": ("spring", "summer", "autumn", "winter"),
    "year": _numbers(2019, 2027, fmt="{}"),
    "day": _numbers(1, 28),
    "hour": ("6 am", "7 am", "7:30 am", "8 am", "9 am", "10:30 am", "noon", "1 pm", "2 pm",
             "3:30 pm", "5 pm", "5:30 pm", "6 pm", "8 pm"),
    "time": (
        "early mornings", "late evenings", "weekends", "lunch breaks", "Sunday mornings",
        "weekday evenings", "the commute", "Friday nights", "rainy afternoons"),
    "time_of_day": ("morning", "evening", "afternoon", "lunchtime"),
    "duration": (
        "two weeks", "ten days", "a long weekend", "three weeks", "a month", "five days",
        "a week", "four nights", "six weeks"),
    "amount": _numbers(50, 3000, 50),
    "minutes": ("10", "15", "20", "25", "30", "40", "45", "60", "90"),
    "count": _numbers(2, 12),
    "food": (
        "sushi", "ramen", "Thai green curry", "margherita pizza", "dark chocolate",
        "spicy food", "sourdough bread", "falafel", "dim sum", "tacos", "Greek salad",
        "mushroom risotto", "pho", "blueberry pancakes", "lentil soup", "grilled halloumi",
        "pad thai", "banana bread", "paella", "butter chicken", "bibimbap", "shakshuka",
        "fish and chips", "gnocchi", "poke bowls", "empanadas", "carrot cake", "miso soup",
        "burritos", "lasagne", "croissants", "hummus", "chilli con carne", "katsu curry"),
    "disliked": (
        "coriander", "olives", "mushrooms", "blue cheese", "anchovies", "raw onions",
        "beetroot", "very sweet desserts", "instant coffee", "liquorice", "okra", "celery",
        "tofu", "capers", "goat's cheese", "sparkling water"),
    "dish_kind": ("salads", "curries", "sandwiches", "pasta", "soups", "pizza", "stir-fries"),
    "eatery": (
        "the Italian place near work", "a food truck by the station", "the café on the corner",
        "a ramen bar downtown", "the market stall on Saturdays", "the bakery near home",
        "a Lebanese restaurant in the old town", "the pub by the river", "a noodle shop",
        "the canteen at work", "a Korean place near the gym", "the deli across the road"),
    "meal": ("breakfast", "lunch", "dinner", "brunch", "a late snack"),
    "drink": (
        "espresso", "a flat white", "green tea", "matcha", "filter coffee", "chai",
        "black tea", "hot chocolate", "cold brew", "peppermint tea", "a smoothie"),
    "milk": ("oat milk", "almond milk", "soy milk", "lactose-free milk", "no sugar"),
    "goal": (
        "save money", "sleep better", "lose weight", "lower their cholesterol",
        "feel less tired", "eat more plants", "cut down on caffeine"),
    "gathering": ("a dinner", "a brunch", "a games night", "a potluck", "a barbecue",
                  "a film night", "a book club evening"),
    "diet_reason": ("health reasons", "ethical reasons", "the environment",
                    "a challenge with friends", "their doctor's advice"),
    "allergy": (
        "peanuts", "shellfish", "penicillin", "cats", "pollen", "gluten", "lactose",
        "tree nuts", "bee stings", "dust mites", "sesame", "eggs", "latex", "kiwi fruit"),
    "remedy": ("an EpiPen", "antihistamines", "an inhaler", "allergy tablets"),
    "diet": (
        "vegetarian", "vegan", "pescatarian", "on a low-carb diet", "avoiding sugar",
        "trying intermittent fasting", "eating halal", "keeping kosher", "gluten-free",
        "dairy-free", "on a high-protein diet"),
    "seat": ("window seats", "aisle seats", "exit-row seats", "seats near the front",
             "seats over the wing"),
    "flight": ("long", "short", "overnight", "early-morning", "transatlantic", "work"),
    "airline": ("KLM", "Lufthansa", "Air Canada", "Qantas", "Finnair", "TAP", "Iberia",
                "Aer Lingus", "SAS", "Singapore Airlines", "Delta", "easyJet"),
    "companion": ("their partner", "their sister", "old university friends", "the kids",
                  "their parents", "a colleague", "their best friend", "nobody else"),
    "sight": ("the food", "the hiking", "the museums", "the beaches", "the night markets",
              "the architecture", "the coffee", "the trains", "the wildlife", "the hot springs"),
    "luggage": ("only a carry-on", "a backpack", "two suitcases", "a duffel bag",
                "a rolling case", "a hiking pack"),
    "travel_issue": ("motion sickness", "bad jet lag", "nervous on flights",
                     "homesick after a week", "migraines on long drives"),
    "transport": ("boats", "night buses", "red-eye flights", "long drives", "small planes",
                  "ferries", "sleeper trains", "coaches"),
    "lodging": ("a hotel", "an Airbnb", "a hostel", "a campsite", "a guesthouse", "a ryokan",
                "a cabin", "a B&B", "a flat", "a farm stay"),
    "places": ("restaurants", "cafés", "hikes", "museums", "bars", "bakeries", "bookshops",
               "beaches", "markets", "viewpoints"),
    "trip_reason": ("work", "a conference", "a wedding", "a friend's birthday",
                    "a client visit", "a job interview", "a family reunion", "a festival"),
    "miles": _numbers(5000, 90000, 2500),
    "relative": (
        "sister", "brother", "mother", "father", "grandmother", "grandfather", "cousin",
        "aunt", "uncle", "best friend", "niece", "nephew", "father-in-law", "mother-in-law",
        "godson", "stepbrother"),
    "school": ("nursery", "primary school", "secondary school", "swimming lessons",
               "piano lessons", "a new school", "university", "a summer camp", "ballet"),
    "activity": ("football practice", "swimming", "choir", "drama club", "the childminder",
                 "school", "ballet", "karate", "a friend's house", "chess club"),
    "gift": ("books", "flowers", "gardening tools", "whisky", "jigsaw puzzles",
             "scented candles", "chocolate", "vinyl records", "board games", "tea",
             "a cookbook", "wool scarves"),
    "celebration": ("a surprise party", "a weekend away", "a dinner out", "a picnic",
                    "a trip to the coast", "a spa day", "concert tickets"),
    "period": ("month", "Christmas", "summer", "Easter", "other weekend", "spring", "year"),
    "sport": (
        "running", "cycling", "swimming", "bouldering", "rowing", "trail running", "surfing",
        "hiking", "kayaking", "skiing", "ice skating", "climbing", "sailing", "paddleboarding"),
    "race": ("a half marathon", "a 10 km race", "a triathlon", "a 100 km ride", "a marathon",
             "an open-water swim", "a trail race", "a charity 5 km", "a duathlon"),
    "gym_habit": ("rarely uses it", "goes three times a week", "mostly uses the pool",
                  "mostly uses the sauna", "only goes in winter", "goes before work"),
    "body_part": ("ankle", "knee", "shoulder", "wrist", "lower back", "hamstring", "calf"),
    "metric": ("heart rate", "sleep", "steps", "VO2 max", "running pace", "resting heart rate"),
    "fitness_goal": (
        "run 5 km without stopping", "do ten pull-ups", "cycle to work every day",
        "lose five kilos", "swim a mile", "touch their toes", "climb a 6a route",
        "hold a plank for two minutes", "run a sub-50 10 km"),
    "pb": _numbers(38, 70),
    "steps": _numbers(4000, 15000, 500),
    "condition": (
        "asthma", "migraines", "type 1 diabetes", "lower back pain", "a bad knee",
        "high blood pressure", "insomnia", "eczema", "hay fever", "a thyroid condition",
        "tinnitus", "IBS", "anaemia", "a heart murmur"),
    "appointment": (
        "a dentist appointment", "a physio session", "an eye test", "a GP appointment",
        "a dermatology check", "a blood test", "a flu jab", "a massage", "a therapy session",
        "a hearing test", "a smear test", "an allergy test", "a check-up"),
    "medication": ("an inhaler", "antihistamines", "vitamin D", "iron tablets", "insulin",
                   "beta blockers", "melatonin", "omega-3 capsules", "thyroxine"),
    "litres": ("1.5", "2", "2.5", "3"),
    "sleep_hours": ("five", "six", "six and a half", "seven", "eight", "nine"),
    "hobby": (
        "playing the guitar", "painting watercolours", "baking bread", "birdwatching",
        "chess", "knitting", "photography", "gardening", "woodworking", "pottery",
        "board games", "writing short stories", "playing the piano", "astronomy", "sewing",
        "restoring old bikes", "calligraphy", "crosswords", "playing the drums", "origami",
        "fishing", "DJing", "foraging", "model railways"),
    "book": (
        "science fiction", "crime novels", "historical fiction", "fantasy", "poetry",
        "biographies", "graphic novels", "thrillers", "popular science", "travel writing",
        "romance novels", "horror", "memoirs", "short story collections"),
    "music": (
        "jazz", "indie rock", "classical music", "techno", "folk music", "hip hop", "opera",
        "punk", "ambient music", "blues", "Afrobeats", "country music", "metal", "soul",
        "bossa nova", "K-pop"),
    "show": (
        "documentaries", "K-dramas", "stand-up comedy", "crime series", "cooking shows",
        "anime", "period dramas", "nature programmes", "reality TV", "old westerns",
        "sitcoms", "football matches", "quiz shows"),
    "venue": ("a small club", "the arena", "an open-air festival", "the concert hall",
              "a jazz bar", "a church", "the park"),
    "subject": (
        "Roman history", "climate science", "personal finance", "nutrition", "psychology",
        "urban planning", "astronomy", "philosophy", "economics", "art history",
        "first aid", "sign language", "marine biology", "bookkeeping"),
    "language": ("Spanish", "French", "Japanese", "German", "Italian", "Mandarin",
                 "Portuguese", "Korean", "Arabic", "Dutch", "Swedish", "Greek"),
    "platform": ("an app", "evening classes", "a tutor", "podcasts", "a textbook",
                 "a language exchange", "YouTube videos", "flashcards"),
    "pet": ("dog", "cat", "rabbit", "parrot", "hamster", "tortoise", "golden retriever",
            "border collie", "tabby cat", "labrador", "dachshund", "guinea pig"),
    "pet_name": ("Biscuit", "Luna", "Milo", "Pepper", "Nala", "Ziggy", "Mochi", "Rocky",
                 "Olive", "Pixel", "Bean", "Juniper", "Toast", "Coco", "Waffles", "Ash"),
    "pet_age": _numbers(2, 14),
    "pet_food": ("grain-free food", "wet food only", "a raw diet", "senior food",
                 "prescription food", "chicken treats"),
    "pet_fear": ("fireworks", "thunder", "the vacuum cleaner", "other dogs", "the car",
                 "the vet", "bicycles"),
    "thing": (
        "a new laptop", "noise-cancelling headphones", "a standing desk", "an e-bike",
        "a dishwasher", "a second-hand car", "hiking boots", "a coffee grinder", "a tent",
        "a road bike", "a smart watch", "a sofa bed", "a robot vacuum", "a kayak",
        "a new phone", "an air fryer", "a sewing machine", "a cargo bike"),
    "chore": ("bin collection", "the cleaner's visit", "the grocery delivery",
              "the window cleaner", "the gardener", "recycling pickup"),
    "repair": ("the boiler", "a leaking tap", "the washing machine", "the roof",
               "the front door lock", "the fridge", "the heating", "a broken window"),
    "room": ("the kitchen", "the bathroom", "the spare room", "the garden", "the attic",
             "the living room", "the balcony", "the hallway"),
    "ordinal": ("1st", "5th", "10th", "15th", "20th", "28th"),
    "verdict": ("loved it", "found it too salty", "would go again", "was disappointed",
                "wants the recipe", "thought it was overpriced"),
    "work_period": ("sprint", "week", "month", "quarter"),
    "tracker": ("a smart watch", "a fitness ring", "a chest strap", "a phone app",
                "a spreadsheet", "a bike computer"),
    "speed": ("1.2x", "1.5x", "2x"),
    "onset": ("childhood", "their twenties", "last year", "a trip abroad", "pregnancy"),
    "severity": ("mildly", "badly", "within minutes", "with hives", "with a rash"),
    "fee": _numbers(20, 90, 5),
    "pet_remedy": ("a blanket", "treats", "calm music", "a thunder shirt", "cuddles",
                   "a pheromone diffuser"),
    "pet_shop": ("the pet shop in town", "an online shop", "the vet", "the supermarket",
                 "a farm shop"),
    "cause": ("a cancer charity", "the local hospice", "a mental health charity",
              "an animal shelter", "a children's hospital", "a food bank"),
}
# A slot of these kinds is a persona fact (one value per user), not a fresh draw.
FACTS = ("city", "employer", "role", "partner", "partner_role", "manager", "child",
         "child_name", "child_birthday", "anniversary", "pet", "pet_name", "pet_age", "diet",
         "allergy", "condition", "language")
# A slot of these kinds draws from the user's own few values (POOL_SHARE of the time).
POOLS = {"colleague": 3, "sport": 2, "hobby": 3, "music": 2, "book": 2, "show": 2,
         "food": 4, "tech": 3, "project": 3, "destination": 4, "relative": 3}
POOL_SHARE = 0.75
OPTIONAL_SHARE = 0.6  # how often an optional [segment] of a template is kept
PERSONA_TOPICS = (3, 5)  # how many topics a user's memories are about, at least and most
RETRIES = 8  # fresh draws before a user's repeated text is accepted

# Templates per topic. {slot}s are filled from the persona or VOCABULARY; a [segment] is
# optional. Most templates have several independent slots and segments, so that 100,000
# memories over 100 users are nearly all different texts, as a real store's would be.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "travel": (
        "Prefers {seat} on {flight} flights[, ideally with {airline}][ to {destination}]",
        "Planning a trip to {destination} in {month}[ with {companion}][ on a budget of "
        "{amount} euros]",
        "Went to {destination} for {duration} in {month} {year}[ and loved {sight}]",
        "Wants to visit {destination}[ with {companion}][ for {sight}]",
        "Packs {luggage} for {duration} away[, even in {season}][ to {destination}]",
        "Gets {travel_issue} when travelling[, so avoids {transport}][ and packs {remedy}]"
        "[ since a trip to {destination}]",
        "Booked {lodging} in {destination} for {duration} in {month}[ with {companion}]",
        "Passport expires in {month} {year}[; renew before the {destination} trip]",
        "Keeps a list of {places} to try in {destination}[ and {destination2}]",
        "Travelling to {destination} for {trip_reason} on {weekday} {day} {month}",
        "Has {miles} air miles with {airline}[ saved for {destination}]",
        "Needs a visa for {destination}[ for {trip_reason}][ before {month}]",
        "Avoids {transport} after a bad trip to {destination}[ in {year}]"),
    "food": (
        "Loves {food}[ from {eatery}][, especially on {weekday}s]",
        "Can't stand {disliked}[ in {dish_kind}][, even a little][; {partner} loves it]",
        "Is {diet}[ since {month} {year}][ for {diet_reason}]",
        "Orders {food} from {eatery} every {weekday}[ for {meal}]",
        "Wants to learn to cook {food}[ for {partner}][ before {month}]",
        "Favourite {meal} spot in {city} is {eatery}[, for the {food}]",
        "Allergic to {allergy}[, carries {remedy}][ since {onset}][; reacts {severity}]",
        "Has {food} for {meal} most {time}[ with {drink}]",
        "Is cutting back on {food}[ until {month}] to {goal}",
        "Asked for a recipe for {food} without {disliked}[ that serves {count}]",
        "Hosts {gathering} for {count} friends on the last {weekday} of the month"
        "[, usually cooking {food}]",
        "Meal-preps {food} and {food2} on {weekday} evenings",
        "Drinks {drink}[ with {milk}] every {time_of_day}[ at {hour}]",
        "Tried {food} at {eatery} in {month} and {verdict}"),
    "family": (
        "{Child}'s birthday is on {child_birthday}[; wants {gift}]",
        "{Child} {child_name} starts {school} in {month}[ {year}]",
        "Partner {partner} works as a {partner_role}[ and commutes on {weekday}s]",
        "Visits their {relative} in {city2} every {period}[ with {companion}]",
        "{Child} {child_name} has taken up {hobby}[ and practises on {weekday}s]",
        "Wedding anniversary is on {anniversary}[; planning {celebration}]",
        "Calls their {relative} every {weekday}[ at {hour}][ in {city2}]",
        "{Child} {child_name} is allergic to {allergy2}[ and carries {remedy}]",
        "Planning {celebration} for {partner}'s birthday in {month}",
        "Picks up {child_name} from {activity} on {weekday}s[ at {hour}]",
        "{Relative}'s birthday is on {day} {month}[; likes {gift}]",
        "Shares the school run with {partner} on {weekday}s[ and {weekday2}s]",
        "Looking for {gift} for their {relative}[ under {amount} euros]",
        "{Relative} is coming to stay for {duration} in {month}[ from {city2}]"),
    "work": (
        "Works as a {role} at {employer}[ in {city}][ since {year}]",
        "Working on {project} with {colleague}[ until {month}]",
        "Has a one-to-one with {manager} every {weekday} at {hour}",
        "Deadline for {project} is {day} {month}[; {colleague} owns the {deliverable}]",
        "Wants to get better at {tech}[ for {project}][ by {season}]",
        "Presenting {project} to {audience} on {weekday}[ at {hour}]",
        "Prefers working from {workplace} on {weekday}s[ and {weekday2}s][ to focus on {project}]",
        "Uses {tech} and {tech2} every day at work[ for {project}]",
        "Was promoted to senior {role} in {month} {year}[ after {project}]",
        "Finds meetings before {hour} hard to focus in[, especially on {weekday}s]"
        "[ without {drink}][; told {manager}]",
        "Pairing with {colleague} on {project} this {work_period}",
        "Thinking about leaving {employer} for {next_job}[ in {season}][ after {project}]",
        "Needs to send the {deliverable} for {project} to {colleague} by {weekday}",
        "Manages {count} people, including {colleague}[ and {colleague2}]",
        "Expenses for the {destination} trip are due on {day} {month}"),
    "fitness": (
        "Goes {sport} every {weekday} {time_of_day}[ with {colleague}]",
        "Training for {race} in {month}[ in {city2}][ with {colleague}]",
        "Wants to try {sport} this {season}[ in {destination}][ with {companion}]",
        "Ran 10 km in a personal best of {pb} minutes[ in {month}][ in {city2}]",
        "Has a gym membership in {city} for {fee} euros a month but {gym_habit}[ since {year}]",
        "Stretches for {minutes} minutes after {sport}[ on {weekday}s]"
        "[ since hurting their {body_part}]",
        "Hurt their {body_part} {sport} in {month}[; told to rest for {duration}]",
        "Walks {steps} steps a day on average[, more on {weekday}s][ since {month}]"
        "[, aiming for {steps2}]",
        "Prefers {sport} in the {time_of_day}[ before {hour}][ with {colleague}]",
        "Tracks {metric} with {tracker}[ since {month}][ while training for {race}]",
        "Goal is to {fitness_goal} by {month}[ {year}][ with {colleague}]",
        "Signed up for {race} on {day} {month}[ to raise money for {cause}]"),
    "health": (
        "Has {condition}[, diagnosed in {month} {year}][; sees a specialist every {period}]",
        "Has {appointment} on {weekday} {day} {month} at {hour}",
        "Takes {medication} every {time_of_day}[ for {condition}][ since {year}]",
        "Sleeps badly before {weekday} meetings[ with {colleague}][ and after {drink}]",
        "Trying to drink {litres} litres of water a day[ since {month}][, more on {weekday}s]"
        "[ after {sport}]",
        "Doctor suggested cutting down on {food} because of {condition}[ at the {month} check-up]",
        "Needs to book {appointment}[ before {month}][ on a {weekday}][ after {hour}]",
        "Gets {condition} flare-ups in {season}[, worse after {sport}][ and takes {medication}]",
        "Sleeps about {sleep_hours} hours a night[ since {month}]"
        "[, less after {drink} in the {time_of_day}]",
        "Meditates for {minutes} minutes on {time}[ to manage {condition}][ using {platform}]",
        "Had {appointment} on {day} {month}[; all fine][; next one in {month2}]"),
    "hobbies": (
        "Enjoys {hobby} on {time}[ with {companion}][ in {city}]",
        "Started {hobby} in {month} {year}[ after {colleague} suggested it]",
        "Wants to get better at {hobby}[ with help from {colleague}][ before {season}]",
        "Joined a club in {city} for {hobby}[ that meets on {weekday}s]",
        "Spends {time} {hobby}[ while listening to {music}]",
        "Spent {amount} euros on gear for {hobby}[ in {month}]",
        "Gave up {hobby} in {year} but wants to restart[ in {season}][ with {companion}]",
        "Got {child_name} interested in {hobby}[ last {season}]",
        "Takes a class every {weekday} to get better at {hobby}[ at {hour}][ in {city}]",
        "Entered a {hobby} competition in {month}[ in {city2}]"),
    "media": (
        "Reads {book} before bed[ on {time}][, lately one set in {destination}]",
        "Is into {music} lately[, especially on {time}][ thanks to {colleague}]",
        "Favourite genre is {book}[, but also likes {book2}]"
        "[; currently reading one set in {destination}]",
        "Wants recommendations for {book}[ like the last one set in {destination}]"
        "[ to read on {time}]",
        "Listens to {music} on {time}[ and podcasts about {subject}]",
        "Doesn't enjoy {music}[ or {music2}][, but {partner} does]",
        "Going to a {music} concert at {venue} in {city2} in {month}",
        "Watches {show} with {partner} on {weekday}s[ after {meal}]",
        "Binge-watches {show} on {time}[ with {partner}][ instead of sleeping]",
        "Reading group picks {book} for {month}[; hosting on {weekday}][ with {colleague}]"),
    "pets": (
        "Has a {pet} named {pet_name}[ adopted in {month} {year}]",
        "{Pet_name} the {pet} is {pet_age} years old[ and loves {time}]",
        "{Pet_name} needs a vet check-up on {day} {month}[ for {body_part} stiffness]",
        "Walks {pet_name} every {time_of_day}[ with {colleague}][ for {minutes} minutes]",
        "{Pet_name} is scared of {pet_fear}[, especially in {month}]"
        "[; calms down with {pet_remedy}]",
        "Looking for a pet sitter for {pet_name} for {duration} in {month}"
        "[ while in {destination}]",
        "{Pet_name} only eats {pet_food}[ since {month}][, from {pet_shop}]",
        "Adopted {pet_name} from a shelter in {city}[ in {year}]",
        "Takes {pet_name} to the groomer every {period}[ on a {weekday}][ at {hour}]"
        "[; costs {fee} euros]"),
    "home": (
        "Lives in {city}[ with {partner}][ since {year}]",
        "Rent of {amount} euros is due on the {ordinal} of each month[, split with {partner}]"
        "[; goes up in {month}]",
        "Saving up for {thing}[ by {month}][, has {amount} euros so far]",
        "Wants to buy {thing} under {amount} euros[ before {season}]",
        "Landlord is fixing {repair} on {weekday} {day} {month}[ at {hour}]",
        "Moving to a new apartment in {city2} in {month}[ {year}]",
        "{Chore} is on {weekday}s[ at {hour}][, except in {month}]",
        "Budget for groceries is {amount} euros a month[ for {count} people][ since {month}]",
        "Sold {thing} last {month}[ for {amount2} euros]",
        "Renovating {room} in {month}[ with {colleague}'s help]",
        "Neighbour {colleague} waters the plants when they travel[ in {season}]"
        "[ to {destination}]"),
    "learning": (
        "Taking an online course in {tech}[ until {month}][ for {minutes} minutes a day]"
        "[ with {colleague}]",
        "Learning {language} with {platform} on {time}[ since {month}]",
        "Wants to read more about {subject}[ this {season}][ on {time}][, starting with {book}]",
        "Has a {tech} certification exam on {day} {month}[ {year}]",
        "Practises {language} with {colleague} on {weekday}s[ at {hour}]",
        "Goal is to be fluent in {language} by {month} {year}[ for {trip_reason} in {destination}]",
        "Studies {subject} for {minutes} minutes a day[ before work][ using {platform}]",
        "Signed up for an evening class on {subject}[ in {city}][ on {weekday}s]"
        "[ with {colleague}]",
        "Listens to podcasts about {subject} on {time}[, lately one on {subject2}]"
        "[ at {speed} speed]"),
}
TOPICS = tuple(TEMPLATES)
VOWELS = frozenset("aeiouAEIOU")
_OPTIONAL = re.compile(r"\[([^\]]*)\]")
_FORMATTER = string.Formatter()


@dataclass(frozen=True)
class Persona:
    """One user's topics (with weights), fixed facts and pools of favourite values."""

    user: int
    topics: tuple[str, ...]
    weights: tuple[int, ...]
    facts: dict[str, str]
    pools: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class Memory:
    """One generated memory: whose it is, what it is about, and the text."""

    user: int
    topic: str
    text: str


def _seeded(seed: float, *parts: object) -> random.Random:
    """A generator for one purpose (`parts`) under `seed`, independent of the others."""
    # A string seed is hashed with SHA-512 by random.seed, the same in every process
    # (str's hash() is salted per process and would not be).
    return random.Random(":".join(str(p) for p in (seed, *parts)))


def persona(user: int, seed: float = DEFAULT_SEED) -> Persona:
    """User number `user`'s persona for `seed`: topics, weights, facts and pools."""
    r = _seeded(seed, "persona", user)
    topics = tuple(r.sample(TOPICS, r.randint(*PERSONA_TOPICS)))
    weights = tuple(r.randint(1, 4) for _ in topics)
    names = VOCABULARY["first_name"]
    facts = {
        "partner": r.choice(names), "partner_role": r.choice(VOCABULARY["role"]),
        "manager": r.choice(names), "child": r.choice(("daughter", "son")),
        "child_name": r.choice(names),
        "child_birthday": f"{r.choice(VOCABULARY['day'])} {r.choice(VOCABULARY['month'])}",
        "anniversary": f"{r.choice(VOCABULARY['day'])} {r.choice(VOCABULARY['month'])}",
    }
    for name in FACTS:
        if name not in facts:
            facts[name] = r.choice(VOCABULARY[name])
    pools = {name: tuple(r.sample(VOCABULARY["first_name" if name == "colleague" else name],
                                  size))
             for name, size in POOLS.items()}
    return Persona(user, topics, weights, facts, pools)


def _fill(template: str, who: Persona, r: random.Random) -> str:
    """The template with its optional segments kept or dropped and its slots filled.

    "a" before a slot becomes "an" when the value starts with a vowel ("an accountant").
    """
    template = _OPTIONAL.sub(lambda m: m.group(1) if r.random() < OPTIONAL_SHARE else "",
                             template)
    values: dict[str, str] = {}
    parts: list[str] = []
    for literal, name, _, _ in _FORMATTER.parse(template):
        parts.append(literal)
        if name is None:
            continue
        if name not in values:
            values[name] = _value(name, who, r)
        value = values[name]
        if value[:1] in VOWELS and (literal == "a " or literal.endswith(" a ")):
            parts[-1] = literal[:-2] + "an "
        parts.append(value)
    text = "".join(parts)
    return text[0].upper() + text[1:]


def _value(name: str, who: Persona, r: random.Random) -> str:
    """A slot's value: {Name} capitalises {name}; {name2} is a second, fresh draw."""
    if name[0].isupper():
        value = _value(name[0].lower() + name[1:], who, r)
        return value[0].upper() + value[1:]
    if name[-1].isdigit():
        kind = name.rstrip("0123456789")
        return r.choice(VOCABULARY["first_name" if kind == "colleague" else kind])
    if name in who.facts:
        return who.facts[name]
    if name in who.pools and r.random() < POOL_SHARE:
        return r.choice(who.pools[name])
    return r.choice(VOCABULARY["first_name" if name == "colleague" else name])


def generate_memories(count: int, users: int, seed: float = DEFAULT_SEED) -> list[Memory]:
    """`count` memories over `users` users: memory k is user k mod `users`'s."""
    if count < 0 or users < 1:
        raise ValueError("count must be at least 0 and users at least 1")
    personas = [persona(u, seed) for u in range(min(users, count))]
    streams = [_seeded(seed, "memories", p.user) for p in personas]
    seen: list[set[str]] = [set() for _ in personas]
    memories = []
    for k in range(count):
        u = k % users
        who, r = personas[u], streams[u]
        for _ in range(RETRIES):
            topic = r.choices(who.topics, weights=who.weights)[0]
            text = _fill(r.choice(TEMPLATES[topic]), who, r)
            if text not in seen[u]:
                break
        seen[u].add(text)
        memories.append(Memory(u, topic, text))
    return memories


def user_memories(user: int, count: int, seed: float = DEFAULT_SEED) -> list[Memory]:
    """`count` memories of user number `user` alone, distinct where the persona allows:
    the bench's real-text load, whose users hold different numbers of memories. The
    first N are the same whatever count is asked for."""
    if count < 0 or user < 0:
        raise ValueError("count and user must be at least 0")
    who, r = persona(user, seed), _seeded(seed, "user-memories", user)
    seen: set[str] = set()
    memories = []
    for _ in range(count):
        for _ in range(RETRIES):
            topic = r.choices(who.topics, weights=who.weights)[0]
            text = _fill(r.choice(TEMPLATES[topic]), who, r)
            if text not in seen:
                break
        seen.add(text)
        memories.append(Memory(user, topic, text))
    return memories


def memory_texts(count: int, users: int, seed: float = DEFAULT_SEED) -> list[str]:
    """The texts of `generate_memories(count, users, seed)`."""
    return [m.text for m in generate_memories(count, users, seed)]
