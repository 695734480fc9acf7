"""What the demo simulator draws from: the chain's product range and plausible names."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    category: str
    price: int  # minor units


CATALOG: tuple[Product, ...] = (
    Product("COF-001", "Эспрессо", "coffee", 120_00),
    Product("COF-002", "Американо 300 мл", "coffee", 160_00),
    Product("COF-003", "Капучино 300 мл", "coffee", 220_00),
    Product("COF-004", "Латте 400 мл", "coffee", 250_00),
    Product("COF-005", "Раф ванильный 400 мл", "coffee", 290_00),
    Product("COF-006", "Кофе в зёрнах, 250 г", "coffee", 690_00),
    Product("COF-007", "Кофе в зёрнах, 1 кг", "coffee", 2290_00),
    Product("BAK-001", "Круассан", "bakery", 95_00),
    Product("BAK-002", "Багет", "bakery", 79_00),
    Product("BAK-003", "Хлеб бородинский", "bakery", 65_00),
    Product("BAK-004", "Синнабон", "bakery", 189_00),
    Product("BAK-005", "Пирог с вишней", "bakery", 540_00),
    Product("BAK-006", "Торт медовик, 1 кг", "bakery", 1490_00),
    Product("BAK-007", "Чиабатта", "bakery", 89_00),
    Product("DAI-001", "Молоко 3,2%, 1 л", "dairy", 99_00),
    Product("DAI-002", "Кефир 2,5%, 1 л", "dairy", 92_00),
    Product("DAI-003", "Творог 5%, 400 г", "dairy", 189_00),
    Product("DAI-004", "Сыр гауда, 300 г", "dairy", 459_00),
    Product("DAI-005", "Йогурт греческий", "dairy", 85_00),
    Product("DAI-006", "Масло сливочное 82,5%", "dairy", 229_00),
    Product("DAI-007", "Сыр пармезан, 1 кг", "dairy", 2490_00),
    Product("PRO-001", "Бананы, 1 кг", "produce", 139_00),
    Product("PRO-002", "Яблоки, 1 кг", "produce", 159_00),
    Product("PRO-003", "Авокадо", "produce", 129_00),
    Product("PRO-004", "Томаты черри, 250 г", "produce", 199_00),
    Product("PRO-005", "Огурцы, 1 кг", "produce", 249_00),
    Product("PRO-006", "Клубника, 500 г", "produce", 599_00),
    Product("PRO-007", "Зелень, пучок", "produce", 59_00),
    Product("HOU-001", "Средство для посуды", "household", 189_00),
    Product("HOU-002", "Бумажные полотенца", "household", 149_00),
    Product("HOU-003", "Капсулы для стирки", "household", 899_00),
    Product("HOU-004", "Пакеты для мусора", "household", 119_00),
    Product("HOU-005", "Губки, 10 шт.", "household", 99_00),
    Product("HOU-006", "Кофемолка ручная", "household", 2190_00),
    Product("SNA-001", "Шоколад горький", "snacks", 149_00),
    Product("SNA-002", "Орехи кешью, 150 г", "snacks", 329_00),
    Product("SNA-003", "Чипсы", "snacks", 129_00),
    Product("SNA-004", "Печенье овсяное", "snacks", 109_00),
    Product("SNA-005", "Батончик протеиновый", "snacks", 119_00),
    Product("SNA-006", "Набор конфет", "snacks", 1190_00),
)

CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(p.category for p in CATALOG))
BY_CATEGORY: tuple[tuple[Product, ...], ...] = tuple(
    tuple(p for p in CATALOG if p.category == c) for c in CATEGORIES
)


def catalog() -> list[Product]:
    """The simulated chain's product range (a fresh list, so callers may sort or filter it)."""
    return list(CATALOG)


# (Cyrillic, Latin) pairs: the Latin form builds plausible e-mail addresses. Surnames are given
# in the masculine form; every one here takes the feminine form by appending "а"/"a".
RU_MALE = (
    ("Александр", "aleksandr"),
    ("Дмитрий", "dmitry"),
    ("Максим", "maksim"),
    ("Сергей", "sergey"),
    ("Андрей", "andrey"),
    ("Алексей", "aleksey"),
    ("Иван", "ivan"),
    ("Михаил", "mikhail"),
    ("Никита", "nikita"),
    ("Артём", "artem"),
    ("Егор", "egor"),
    ("Павел", "pavel"),
    ("Роман", "roman"),
    ("Олег", "oleg"),
)
RU_FEMALE = (
    ("Анна", "anna"),
    ("Мария", "maria"),
    ("Елена", "elena"),
    ("Ольга", "olga"),
    ("Наталья", "natalya"),
    ("Екатерина", "ekaterina"),
    ("Татьяна", "tatyana"),
    ("Ирина", "irina"),
    ("Юлия", "yulia"),
    ("Дарья", "darya"),
    ("Светлана", "svetlana"),
    ("Анастасия", "anastasia"),
    ("Ксения", "ksenia"),
    ("Полина", "polina"),
)
RU_SURNAMES = (
    ("Иванов", "ivanov"),
    ("Смирнов", "smirnov"),
    ("Кузнецов", "kuznetsov"),
    ("Попов", "popov"),
    ("Васильев", "vasiliev"),
    ("Петров", "petrov"),
    ("Соколов", "sokolov"),
    ("Михайлов", "mikhailov"),
    ("Новиков", "novikov"),
    ("Фёдоров", "fedorov"),
    ("Морозов", "morozov"),
    ("Волков", "volkov"),
    ("Алексеев", "alekseev"),
    ("Лебедев", "lebedev"),
    ("Семёнов", "semenov"),
    ("Егоров", "egorov"),
    ("Павлов", "pavlov"),
    ("Козлов", "kozlov"),
    ("Степанов", "stepanov"),
    ("Николаев", "nikolaev"),
    ("Орлов", "orlov"),
    ("Андреев", "andreev"),
    ("Макаров", "makarov"),
    ("Никитин", "nikitin"),
)
EN_FIRST = (
    "James",
    "John",
    "Robert",
    "Michael",
    "David",
    "Thomas",
    "Daniel",
    "Mark",
    "Mary",
    "Emma",
    "Olivia",
    "Sarah",
    "Laura",
    "Emily",
    "Kate",
    "Alice",
)
EN_SURNAMES = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Miller",
    "Davis",
    "Wilson",
    "Taylor",
    "Clark",
    "Walker",
    "Wright",
    "Hill",
    "Green",
    "Baker",
    "Turner",
)
