# ruff: noqa: E501  (data: one article or query per line)
"""The labelled evaluation set's articles: 30 hotline topics, each in zh, ar, it and en.

Written as a hotline's knowledge editors would: a title, the text the operator reads
out, the numbers to give, the catalogue codes, and keywords (tags) citizens use.
"""

from __future__ import annotations

from typing import Any

# key: (problem codes, tags, {language: (title, body)}, phones)
ARTICLES: dict[str, dict[str, Any]] = {
    "streetlight": {
        "codes": ["streetlight-out"],
        "tags": ["lamp", "lampione", "路灯", "إنارة"],
        "phones": ["12345"],
        "zh": (
            "路灯不亮或损坏怎么报修",
            "如果您家附近或道路上的路灯不亮、闪烁或灯杆损坏，请告诉我们路灯的位置和灯杆编号。照明管理处会在两个工作日内修复。夜间道路照明故障可直接拨打12345报修。",
        ),
        "ar": (
            "الإبلاغ عن عطل في إنارة الشوارع",
            "إذا كان مصباح الشارع أو عمود الإنارة قرب منزلك مطفأً أو يومض أو مكسوراً، أخبرنا بموقع العمود ورقمه. تقوم إدارة الإنارة العامة بإصلاح الأعطال خلال يومي عمل.",
        ),
        "it": (
            "Lampione spento o guasto: come segnalarlo",
            "Se un lampione della strada è spento, lampeggia o il palo è danneggiato, indicate la via e il numero del palo. L'ufficio illuminazione pubblica ripara i guasti entro due giorni lavorativi.",
        ),
        "en": (
            "Report a broken streetlight",
            "If a streetlight near your home is out, flickering or the pole is damaged, tell us the street and the pole number. Public lighting repairs street lamps within two working days.",
        ),
    },
    "water_outage": {
        "codes": ["water-outage"],
        "tags": ["water", "acqua", "停水", "مياه"],
        "phones": ["96116"],
        "zh": (
            "停水通知与临时供水",
            "计划停水会提前24小时在小区公告栏和自来水公司网站公布。突发停水时，请先查看邻居是否也没有自来水，再拨打自来水公司热线96116。停水超过12小时将安排送水车临时供水。",
        ),
        "ar": (
            "انقطاع المياه والتزويد المؤقت",
            "يُعلَن عن انقطاع المياه المبرمج قبل 24 ساعة على موقع شركة المياه. عند انقطاع الماء المفاجئ تحقق إن كان الجيران بلا مياه أيضاً ثم اتصل بشركة المياه. إذا استمر الانقطاع أكثر من 12 ساعة ترسل الشركة صهريج مياه.",
        ),
        "it": (
            "Interruzione dell'acqua e fornitura temporanea",
            "Le interruzioni programmate della fornitura d'acqua sono annunciate 24 ore prima sul sito dell'acquedotto. Se l'acqua manca all'improvviso, verificate se anche i vicini sono senz'acqua e chiamate l'acquedotto. Oltre 12 ore di interruzione arriva un'autobotte.",
        ),
        "en": (
            "Water outage and temporary supply",
            "Planned water outages are announced 24 hours ahead on the water company's website. If your tap water stops suddenly, check whether your neighbours have no water too, then call the water company. If the outage lasts over 12 hours a water tanker is sent.",
        ),
    },
    "heating": {
        "codes": ["heating-fault"],
        "tags": ["radiator", "riscaldamento", "暖气", "تدفئة"],
        "phones": ["96069"],
        "zh": (
            "暖气不热怎么办",
            "供暖季为每年11月15日至次年3月15日。室内温度低于18度、暖气片不热时，请先排气，再拨打热力公司热线96069报修。供暖费缴纳和停供申请也请联系热力公司。",
        ),
        "ar": (
            "التدفئة لا تعمل",
            "موسم التدفئة المركزية من 15 نوفمبر إلى 15 مارس. إذا كانت حرارة المنزل أقل من 18 درجة أو كان المِدفأة باردة، أخرج الهواء من المشعاع ثم اتصل بشركة التدفئة للإصلاح.",
        ),
        "it": (
            "Il riscaldamento non funziona",
            "La stagione del riscaldamento va dal 15 novembre al 15 marzo. Se in casa ci sono meno di 18 gradi o i termosifoni sono freddi, sfiatate i radiatori e poi chiamate il gestore del teleriscaldamento.",
        ),
        "en": (
            "Heating not working",
            "The heating season runs from 15 November to 15 March. If your home is below 18 degrees or the radiators stay cold, bleed the radiators first, then call the district heating company for a repair.",
        ),
    },
    "waste_schedule": {
        "codes": ["missed-collection"],
        "tags": ["garbage", "trash", "spazzatura", "垃圾", "قمامة"],
        "phones": [],
        "zh": (
            "生活垃圾收运时间和漏收",
            "居民生活垃圾每天早上7点前收运，可回收物每周二、周五收运。垃圾桶未被清运（漏收）时，请告诉我们地址和垃圾桶类型，环卫部门会在48小时内补收。",
        ),
        "ar": (
            "مواعيد جمع القمامة والنفايات المنزلية",
            "تُجمع النفايات المنزلية كل يوم قبل الساعة السابعة صباحاً، والمواد القابلة للتدوير يومي الثلاثاء والجمعة. إذا لم تُجمع الحاوية أبلغنا بالعنوان ونوع الحاوية وسنجمعها خلال 48 ساعة.",
        ),
        "it": (
            "Orari della raccolta rifiuti e mancata raccolta",
            "I rifiuti domestici sono raccolti ogni giorno prima delle 7, la raccolta differenziata il martedì e il venerdì. Se il cassonetto non è stato svuotato, segnalate indirizzo e tipo di contenitore: il recupero avviene entro 48 ore.",
        ),
        "en": (
            "Waste collection days and missed bins",
            "Household rubbish is collected every day before 7 am, recycling on Tuesdays and Fridays. If your bin was missed, tell us the address and the bin type and it will be collected within 48 hours.",
        ),
    },
    "bulky_waste": {
        "codes": ["appliance-removal"],
        "tags": ["fridge", "sofa", "ingombranti", "大件垃圾", "أثاث"],
        "phones": [],
        "zh": (
            "大件垃圾和旧家电清运预约",
            "旧沙发、床垫、冰箱、洗衣机等大件垃圾不能放在垃圾桶旁。请预约上门清运，说明物品种类和取件地址，每户每月可免费清运两件。",
        ),
        "ar": (
            "إزالة الأثاث القديم والأجهزة الكبيرة",
            "لا تضع الأرائك والفرشات والثلاجات والغسالات القديمة بجانب الحاويات. احجز موعداً لاستلامها من المنزل مع ذكر نوع الجهاز والعنوان، ويحق لكل أسرة استلام قطعتين مجاناً كل شهر.",
        ),
        "it": (
            "Ritiro ingombranti ed elettrodomestici",
            "Divani, materassi, frigoriferi e lavatrici vecchi non vanno lasciati accanto ai cassonetti. Prenotate il ritiro a domicilio indicando il tipo di oggetto e l'indirizzo: due pezzi al mese sono gratuiti.",
        ),
        "en": (
            "Bulky waste and old appliance pickup",
            "Old sofas, mattresses, fridges and washing machines must not be left beside the bins. Book a home pickup with the item type and address; two items a month are collected free.",
        ),
    },
    "pothole": {
        "codes": ["pothole"],
        "tags": ["road", "strada", "坑洼", "حفرة"],
        "phones": [],
        "zh": (
            "道路坑洼和路面破损报修",
            "发现路面坑洼、塌陷或井盖缺失，请说明具体位置和坑的大小。危险的坑洞会在24小时内设置警示并修补，一般路面破损在5个工作日内修复。",
        ),
        "ar": (
            "الإبلاغ عن حفر في الطريق",
            "إذا رأيت حفرة أو هبوطاً في الطريق أو غطاء بالوعة مفقوداً، حدد الموقع وحجم الحفرة. تُوضع إشارات تحذير على الحفر الخطرة خلال 24 ساعة ويُصلَح سطح الطريق خلال خمسة أيام عمل.",
        ),
        "it": (
            "Buche stradali e asfalto danneggiato",
            "Se vedete una buca, un avvallamento o un tombino mancante, indicate il punto preciso e la dimensione della buca. Le buche pericolose sono segnalate entro 24 ore e l'asfalto riparato entro cinque giorni lavorativi.",
        ),
        "en": (
            "Potholes and damaged road surface",
            "If you see a pothole, a sunken road or a missing manhole cover, give the exact location and the size of the hole. Dangerous potholes are fenced within 24 hours and the road repaired within five working days.",
        ),
    },
    "noise": {
        "codes": ["noise-complaint"],
        "tags": ["rumore", "loud", "噪音", "ضوضاء", "إزعاج"],
        "phones": ["110"],
        "zh": (
            "噪音扰民投诉",
            "夜间22点至早上6点禁止建筑施工和高音喇叭。邻居装修、商铺音响、广场舞等噪音扰民可以投诉，请说明噪音来源、地址和时间段。正在发生的严重噪音可拨打110。",
        ),
        "ar": (
            "شكوى الضوضاء والإزعاج",
            "يُمنع البناء ومكبرات الصوت من العاشرة ليلاً حتى السادسة صباحاً. يمكنك تقديم شكوى من ضوضاء الجيران أو المحلات أو الحفلات، مع ذكر مصدر الإزعاج والعنوان والوقت.",
        ),
        "it": (
            "Segnalare rumori molesti",
            "Dalle 22 alle 6 sono vietati cantieri e musica ad alto volume. Potete segnalare rumori dei vicini, di locali o di feste indicando la fonte del rumore, l'indirizzo e gli orari. Per disturbi gravi in corso chiamate la polizia locale.",
        ),
        "en": (
            "Noise complaints",
            "Building work and loud music are banned from 10 pm to 6 am. You can complain about noisy neighbours, bars or parties: tell us the source of the noise, the address and the times. For serious noise happening now call the police.",
        ),
    },
    "parking_permit": {
        "codes": ["parking-permit"],
        "tags": ["permesso sosta", "resident parking", "停车证", "تصريح وقوف"],
        "phones": [],
        "zh": (
            "居民停车证办理",
            "住在收费停车区的居民可以申请居民停车证。需要身份证、行驶证和居住证明，每辆车每年费用120元，可在网上或社区服务中心办理，审核需要5个工作日。",
        ),
        "ar": (
            "تصريح وقوف السيارات للسكان",
            "يمكن لسكان مناطق الوقوف المدفوع طلب تصريح وقوف للسكان. تحتاج إلى بطاقة الهوية ورخصة السيارة وإثبات السكن. الرسوم 120 في السنة لكل سيارة، والطلب عبر الإنترنت أو في مركز الخدمات، ويستغرق خمسة أيام عمل.",
        ),
        "it": (
            "Permesso di sosta per residenti",
            "Chi abita in una zona a sosta a pagamento può chiedere il permesso di sosta per residenti. Servono carta d'identità, libretto dell'auto e certificato di residenza. Costa 120 euro l'anno per veicolo; la domanda si fa online o allo sportello e richiede cinque giorni lavorativi.",
        ),
        "en": (
            "Resident parking permit",
            "Residents of paid parking zones can apply for a resident parking permit. You need your ID card, the car's registration and proof of address. It costs 120 a year per vehicle; apply online or at a service centre, processing takes five working days.",
        ),
    },
    "id_card": {
        "codes": ["id-card"],
        "tags": ["carta d'identità", "identity card", "身份证", "بطاقة الهوية"],
        "phones": [],
        "zh": (
            "身份证办理、换领和补办",
            "身份证到期前三个月可以换领，丢失后请尽快挂失并补办。请携带户口簿和近期照片到派出所户籍窗口办理，工本费20元，一般20个工作日领取，急需可以办理临时身份证。",
        ),
        "ar": (
            "إصدار بطاقة الهوية وتجديدها",
            "يمكن تجديد بطاقة الهوية الشخصية قبل انتهائها بثلاثة أشهر. عند فقدان البطاقة أبلغ عن الفقدان واطلب بدل فاقد. أحضر صورة حديثة وشهادة الميلاد إلى مكتب الأحوال المدنية، وتُسلَّم البطاقة خلال 20 يوم عمل.",
        ),
        "it": (
            "Carta d'identità: rilascio, rinnovo e smarrimento",
            "La carta d'identità si rinnova a partire da sei mesi prima della scadenza. In caso di smarrimento o furto fate denuncia e chiedete un duplicato. Prenotate all'anagrafe con una fototessera recente: la carta d'identità elettronica arriva per posta in sei giorni lavorativi.",
        ),
        "en": (
            "ID card: new, renewal and lost cards",
            "You can renew your identity card up to three months before it expires. If it is lost or stolen, report it and apply for a replacement. Book an appointment at the registry office with a recent photo; the new card is ready in 20 working days.",
        ),
    },
    "passport": {
        "codes": ["passport"],
        "tags": ["passaporto", "travel document", "护照", "جواز السفر"],
        "phones": [],
        "zh": (
            "护照申请和续签",
            "申请普通护照需要本人到出入境管理窗口办理，携带身份证并现场拍照采集指纹，费用120元，7个工作日出证。护照有效期不足6个月或签证页用完可以申请换发。",
        ),
        "ar": (
            "طلب جواز السفر وتجديده",
            "يجب تقديم طلب جواز السفر شخصياً في مكتب الهجرة والجوازات مع بطاقة الهوية، وتُؤخذ الصورة والبصمات في المكتب. يصدر الجواز خلال سبعة أيام عمل، ويمكن التجديد إذا بقي على انتهاء صلاحيته أقل من ستة أشهر.",
        ),
        "it": (
            "Richiesta e rinnovo del passaporto",
            "Il passaporto si richiede di persona in questura con documento d'identità, due fototessere e la ricevuta del contributo. Le impronte digitali sono prese allo sportello; il passaporto è pronto in circa quindici giorni. Rinnovatelo se mancano meno di sei mesi alla scadenza.",
        ),
        "en": (
            "Applying for or renewing a passport",
            "Apply for a passport in person at the passport office with your ID card; photo and fingerprints are taken there. The passport is issued in seven working days. Renew it when fewer than six months of validity remain or the visa pages are full.",
        ),
    },
    "income_tax": {
        "codes": ["income-tax"],
        "tags": ["tasse", "taxes", "个税", "ضريبة"],
        "phones": ["12366"],
        "zh": (
            "个人所得税年度汇算和缴税",
            "个人所得税年度汇算时间为每年3月1日至6月30日，可以通过个人所得税App申报、退税或补税。专项附加扣除包括子女教育、房贷利息和赡养老人。税务咨询请拨打12366。",
        ),
        "ar": (
            "الإقرار الضريبي ودفع ضريبة الدخل",
            "يُقدَّم إقرار ضريبة الدخل السنوي من 1 مارس إلى 30 يونيو عبر بوابة الضرائب الإلكترونية، ومنها يمكن طلب استرداد الضريبة أو دفع المستحقات. للاستفسارات الضريبية اتصل بمصلحة الضرائب.",
        ),
        "it": (
            "Dichiarazione dei redditi e pagamento delle tasse",
            "La dichiarazione dei redditi precompilata è disponibile da fine aprile e si invia entro il 30 settembre. Con il modello 730 si ottiene il rimborso o si pagano le imposte dovute. Per dubbi sulle tasse rivolgetevi all'Agenzia delle Entrate o a un CAF.",
        ),
        "en": (
            "Income tax return and paying tax",
            "The annual income tax return is filed between 1 March and 30 June through the online tax portal, where you claim a tax refund or pay what you owe. Deductions include children's education and mortgage interest. Call the tax office with questions.",
        ),
    },
    "unemployment": {
        "codes": ["unemployment-benefit"],
        "tags": ["disoccupazione", "jobless", "失业金", "بطالة"],
        "phones": [],
        "zh": (
            "失业保险金申领",
            "非本人意愿中断就业、缴纳失业保险满一年的人员，可以在失业后60天内申领失业保险金。请携带身份证和解除劳动合同证明到人社部门办理，也可以在网上申请。",
        ),
        "ar": (
            "طلب إعانة البطالة",
            "يحق لمن فقد عمله دون إرادته وكان مشتركاً في تأمين البطالة سنة على الأقل أن يطلب إعانة البطالة خلال 60 يوماً من ترك العمل. أحضر الهوية وشهادة إنهاء عقد العمل إلى مكتب العمل أو قدِّم الطلب عبر الإنترنت.",
        ),
        "it": (
            "Indennità di disoccupazione NASpI",
            "Chi perde il lavoro involontariamente può chiedere l'indennità di disoccupazione NASpI entro 68 giorni dalla fine del contratto. La domanda si presenta online all'INPS o tramite patronato, con documento d'identità e lettera di licenziamento.",
        ),
        "en": (
            "Claiming unemployment benefit",
            "If you lost your job through no fault of your own and paid unemployment insurance for at least a year, claim unemployment benefit within 60 days. Bring your ID and the termination letter to the employment office, or apply online.",
        ),
    },
    "pension": {
        "codes": ["pension"],
        "tags": ["pensione", "retirement", "养老金", "تقاعد"],
        "phones": [],
        "zh": (
            "养老金领取和资格认证",
            "达到法定退休年龄、累计缴纳养老保险满15年，可以按月领取养老金。每年需要进行一次领取资格认证，可以在手机上刷脸认证。养老金每月10日前发放到社保卡。",
        ),
        "ar": (
            "المعاش التقاعدي وشهادة الحياة",
            "عند بلوغ سن التقاعد القانوني ودفع اشتراكات التأمين 15 سنة يُصرف المعاش التقاعدي شهرياً. يجب تقديم إثبات حياة مرة كل سنة، ويُحوَّل المعاش إلى الحساب المصرفي قبل اليوم العاشر من كل شهر.",
        ),
        "it": (
            "Pensione di vecchiaia: requisiti e pagamento",
            "La pensione di vecchiaia spetta a 67 anni con almeno 20 anni di contributi. La domanda si presenta all'INPS online o tramite patronato. Le pensioni sono pagate il primo giorno bancabile di ogni mese.",
        ),
        "en": (
            "State pension: eligibility and payment",
            "You can draw the state pension at the legal retirement age once you have paid contributions for 15 years. Pensioners confirm their eligibility once a year; the pension is paid into your bank account before the 10th of each month.",
        ),
    },
    "transit_card": {
        "codes": ["transit-card"],
        "tags": ["abbonamento", "bus pass", "公交卡", "بطاقة النقل"],
        "phones": [],
        "zh": (
            "公交卡办理、充值和优惠",
            "公交卡可以在地铁站客服中心办理和充值，押金20元。60岁以上老人、学生可以办理优惠卡，凭身份证或学生证申请。公交卡丢失可以凭实名信息挂失。",
        ),
        "ar": (
            "بطاقة المواصلات العامة وشحنها",
            "تُصدر بطاقة الحافلات والمترو في مراكز خدمة محطات المترو ويمكن شحنها هناك أو عبر التطبيق. يحصل كبار السن فوق 60 سنة والطلاب على بطاقة مخفضة بإبراز الهوية أو بطاقة الطالب.",
        ),
        "it": (
            "Abbonamento ai mezzi pubblici e tessera trasporti",
            "La tessera dei trasporti si fa nelle biglietterie della metropolitana e si ricarica anche online. Studenti e over 65 hanno l'abbonamento agevolato presentando il documento d'identità o il tesserino universitario.",
        ),
        "en": (
            "Public transport card and travel passes",
            "Get a public transport card at metro ticket offices and top it up there or in the app. Students and people over 60 get a discounted pass with their ID or student card. A lost registered card can be blocked.",
        ),
    },
    "bus_routes": {
        "codes": ["bus-service"],
        "tags": ["autobus", "timetable", "公交线路", "حافلة"],
        "phones": [],
        "zh": (
            "公交线路调整和首末班时间查询",
            "公交线路临时改道、站点迁移和首末班车时间会在公交站牌和实时公交App上公布。对公交车晚点、跳站、司机服务态度的投诉，请说明线路号、车牌号和时间。",
        ),
        "ar": (
            "مواعيد الحافلات وتغيير الخطوط",
            "تُنشر تغييرات مسارات الحافلات ونقل المحطات ومواعيد أول وآخر حافلة في المحطات وعلى تطبيق النقل. لتقديم شكوى عن تأخر الحافلة أو تجاوز المحطة أذكر رقم الخط ورقم الحافلة والوقت.",
        ),
        "it": (
            "Orari degli autobus e deviazioni delle linee",
            "Deviazioni delle linee, spostamenti di fermate e orari del primo e ultimo autobus sono pubblicati alle fermate e nell'app dei trasporti. Per reclami su ritardi o fermate saltate indicate numero di linea, vettura e orario.",
        ),
        "en": (
            "Bus timetables and route changes",
            "Bus route diversions, moved stops and first and last bus times are posted at stops and in the transit app. To complain about late buses or skipped stops, give the route number, the bus number and the time.",
        ),
    },
    "power_outage": {
        "codes": ["power-outage"],
        "tags": ["blackout", "corrente", "停电", "كهرباء"],
        "phones": ["95598"],
        "zh": (
            "停电查询和电力故障报修",
            "计划停电会提前7天公告。家里突然停电时，请先检查家中空气开关是否跳闸；如果整栋楼或整个小区都停电，请拨打供电服务热线95598。",
        ),
        "ar": (
            "انقطاع الكهرباء والإبلاغ عن الأعطال",
            "يُعلَن عن قطع الكهرباء المبرمج قبل سبعة أيام. إذا انقطع التيار الكهربائي فجأة في منزلك افحص القاطع الكهربائي أولاً، وإذا كان المبنى كله بلا كهرباء فاتصل بشركة الكهرباء.",
        ),
        "it": (
            "Interruzione di corrente e guasti elettrici",
            "Le interruzioni programmate della corrente sono annunciate sette giorni prima. Se in casa manca la luce, controllate prima il salvavita; se è senza elettricità tutto il palazzo, chiamate il numero guasti del distributore di energia elettrica.",
        ),
        "en": (
            "Power cuts and electrical faults",
            "Planned power cuts are announced seven days ahead. If your electricity goes off suddenly, check your circuit breaker first; if the whole building has no power, call the electricity network's fault line.",
        ),
    },
    "gas_leak": {
        "codes": ["gas-leak"],
        "tags": ["gas", "emergency", "燃气", "غاز"],
        "phones": ["119"],
        "zh": (
            "闻到燃气味怎么办",
            "闻到燃气泄漏的味道时，请立即关闭燃气总阀，打开门窗通风，不要开关电器、不要使用明火和手机，到室外安全地点后拨打燃气公司抢修电话或119。",
        ),
        "ar": (
            "رائحة غاز أو تسرب غاز",
            "إذا شممت رائحة تسرب الغاز أغلق صمام الغاز الرئيسي فوراً وافتح النوافذ والأبواب، ولا تشغل الأجهزة الكهربائية أو النار، ثم اخرج واتصل بطوارئ الغاز أو بالدفاع المدني.",
        ),
        "it": (
            "Odore di gas: cosa fare",
            "Se sentite odore di gas chiudete subito il rubinetto generale, aprite porte e finestre, non accendete luci né fiamme e non usate il telefono in casa. Uscite e chiamate il pronto intervento gas o i vigili del fuoco.",
        ),
        "en": (
            "Smell of gas: what to do",
            "If you smell gas, shut off the main gas valve at once, open doors and windows, do not switch anything on or use flames, leave the building and call the gas emergency line or the fire brigade.",
        ),
    },
    "trees": {
        "codes": ["tree-maintenance"],
        "tags": ["albero", "branch", "树木", "شجرة"],
        "phones": [],
        "zh": (
            "树木倒伏、修剪和树枝断落",
            "道路和公园里的树木倒伏、树枝断落挡路时请立即报告，园林部门会在4小时内清理。树枝遮挡路灯或靠近窗户需要修剪，请说明位置，一般两周内安排修剪。",
        ),
        "ar": (
            "الأشجار الساقطة وتقليم الأغصان",
            "إذا سقطت شجرة أو غصن وأغلق الطريق أبلغنا فوراً وستزيله إدارة الحدائق خلال أربع ساعات. لطلب تقليم الأشجار التي تحجب الإنارة أو تقترب من النوافذ حدد الموقع.",
        ),
        "it": (
            "Alberi caduti e potatura",
            "Se un albero o un ramo è caduto e blocca la strada segnalatelo subito: il servizio del verde interviene entro quattro ore. Per la potatura di alberi che coprono i lampioni o toccano le finestre indicate il luogo.",
        ),
        "en": (
            "Fallen trees and tree pruning",
            "If a tree or a branch has fallen and blocks the road, report it at once: the parks service clears it within four hours. To request pruning of trees that cover streetlights or touch windows, give the location.",
        ),
    },
    "stray_animals": {
        "codes": ["stray-animal"],
        "tags": ["cane randagio", "dog", "流浪狗", "كلاب ضالة"],
        "phones": [],
        "zh": (
            "流浪狗、流浪猫和动物伤人",
            "发现流浪狗、流浪猫聚集或有攻击行为，请说明位置和数量，动物收容中心会安排捕捉。被狗咬伤请立即冲洗伤口并在24小时内到医院接种狂犬疫苗。",
        ),
        "ar": (
            "الكلاب والقطط الضالة",
            "إذا رأيت كلاباً أو قططاً ضالة عدوانية أبلغنا بالمكان والعدد وسيرسل مركز إيواء الحيوانات فريقاً. إذا عضك كلب اغسل الجرح فوراً وتوجه إلى المستشفى لأخذ لقاح داء الكلب.",
        ),
        "it": (
            "Cani e gatti randagi",
            "Se vedete cani o gatti randagi aggressivi indicate il luogo e il numero di animali: il canile municipale interviene. In caso di morso lavate subito la ferita e andate al pronto soccorso per la profilassi antirabbica.",
        ),
        "en": (
            "Stray dogs and cats",
            "If you see stray dogs or cats that are aggressive, tell us where and how many, and the animal shelter will send a team. If a dog bites you, wash the wound at once and go to hospital for a rabies vaccine.",
        ),
    },
    "towing": {
        "codes": ["illegal-parking"],
        "tags": ["rimozione auto", "tow", "违章停车", "سحب السيارة"],
        "phones": [],
        "zh": (
            "违章停车举报和被拖车辆查询",
            "车辆堵塞消防通道、占用人行道或盲道可以举报违章停车，请提供车牌号和位置。您的车被拖走后，可以凭行驶证到停车场取车，先缴纳罚款和拖车费。",
        ),
        "ar": (
            "المخالفات المرورية وسحب السيارات",
            "يمكنك الإبلاغ عن سيارة متوقفة بشكل مخالف تسد ممر الطوارئ أو الرصيف مع رقم اللوحة والموقع. إذا سُحبت سيارتك استلمها من الحجز برخصة السيارة بعد دفع الغرامة ورسوم السحب.",
        ),
        "it": (
            "Auto in divieto di sosta e rimozione forzata",
            "Potete segnalare un'auto in divieto di sosta che blocca un passo carrabile o il marciapiede indicando targa e luogo. Se la vostra auto è stata rimossa, ritiratela al deposito con il libretto dopo aver pagato multa e spese di rimozione.",
        ),
        "en": (
            "Illegal parking and towed cars",
            "Report a car parked illegally across a driveway, fire lane or pavement with its plate number and location. If your car was towed, collect it from the car pound with its registration after paying the fine and the towing fee.",
        ),
    },
    "birth_registration": {
        "codes": ["birth-registration"],
        "tags": ["nascita", "newborn", "出生登记", "تسجيل المواليد"],
        "phones": [],
        "zh": (
            "新生儿出生登记和落户",
            "婴儿出生后一个月内应当办理出生登记和户口申报。请携带出生医学证明、父母双方身份证、户口簿和结婚证到派出所办理，可以同时办理医保参保。",
        ),
        "ar": (
            "تسجيل المولود الجديد",
            "يجب تسجيل المولود خلال شهر من الولادة. أحضر شهادة الولادة من المستشفى وبطاقتي هوية الوالدين وعقد الزواج إلى مكتب الأحوال المدنية لاستخراج شهادة الميلاد.",
        ),
        "it": (
            "Denuncia di nascita di un neonato",
            "La nascita va dichiarata entro dieci giorni all'ufficio di stato civile del comune, oppure entro tre giorni in ospedale. Portate l'attestazione di nascita dell'ospedale e i documenti d'identità dei genitori.",
        ),
        "en": (
            "Registering a baby's birth",
            "Register your baby's birth within a month. Bring the hospital's birth certificate, both parents' ID cards and your marriage certificate to the civil registry; the child's health insurance can be arranged at the same time.",
        ),
    },
    "marriage": {
        "codes": ["marriage-registration"],
        "tags": ["matrimonio", "wedding", "结婚登记", "زواج"],
        "phones": [],
        "zh": (
            "结婚登记和离婚登记",
            "结婚登记需要男女双方本人到婚姻登记处办理，携带身份证、户口簿和三张合影照片，可以在网上预约。离婚登记有30天冷静期。",
        ),
        "ar": (
            "توثيق عقد الزواج والطلاق",
            "يحضر الزوجان شخصياً إلى مكتب التوثيق لتسجيل الزواج مع بطاقتي الهوية وصور شخصية، ويمكن حجز موعد عبر الإنترنت. يُسجَّل الطلاق في المكتب نفسه.",
        ),
        "it": (
            "Matrimonio civile: pubblicazioni e celebrazione",
            "Per sposarsi in comune si chiedono le pubblicazioni di matrimonio all'ufficio di stato civile con i documenti d'identità degli sposi. La celebrazione civile si prenota con almeno un mese di anticipo.",
        ),
        "en": (
            "Getting married and registering a marriage",
            "Both partners come in person to the marriage registry with their ID cards and photos; appointments can be booked online. Divorce registration has a 30-day cooling-off period.",
        ),
    },
    "school_enrollment": {
        "codes": ["school-enrollment"],
        "tags": ["iscrizione scuola", "school place", "入学", "تسجيل المدارس"],
        "phones": [],
        "zh": (
            "小学和初中入学报名",
            "适龄儿童小学入学报名时间为每年5月，按户籍和实际居住地划片入学。报名需要户口簿、房产证或租房合同和儿童预防接种证，请在教育局网站填写报名信息。",
        ),
        "ar": (
            "تسجيل الأطفال في المدارس",
            "يبدأ تسجيل الأطفال في المدارس الابتدائية في شهر مايو حسب منطقة السكن. أحضر شهادة الميلاد وإثبات السكن وبطاقة التطعيم وسجل الطفل عبر موقع وزارة التربية والتعليم.",
        ),
        "it": (
            "Iscrizione a scuola primaria e media",
            "Le iscrizioni alla scuola primaria e alla scuola secondaria di primo grado si fanno online a gennaio. I bambini che compiono sei anni entro il 31 dicembre si iscrivono alla prima classe; servono codice fiscale e certificato vaccinale.",
        ),
        "en": (
            "School enrolment",
            "Enrolment for primary and middle school opens in May; places are allocated by catchment area. You need the child's birth certificate, proof of address and vaccination record; register on the education office website.",
        ),
    },
    "health_insurance": {
        "codes": ["health-insurance"],
        "tags": ["tessera sanitaria", "medical", "医保", "تأمين صحي"],
        "phones": [],
        "zh": (
            "城乡居民医疗保险参保缴费和报销",
            "城乡居民医保每年9月至12月集中缴费，可以通过微信、支付宝或银行缴费。住院费用按比例报销，异地就医需要提前备案。医保卡丢失请及时挂失补办。",
        ),
        "ar": (
            "التأمين الصحي والاشتراك والتعويض",
            "يُدفع اشتراك التأمين الصحي للمواطنين من سبتمبر إلى ديسمبر عبر البنك أو التطبيق. تُعوَّض نفقات العلاج في المستشفى بنسبة محددة، ويجب التسجيل المسبق للعلاج في مدينة أخرى.",
        ),
        "it": (
            "Tessera sanitaria e iscrizione al Servizio sanitario",
            "L'iscrizione al Servizio sanitario nazionale si fa all'ASL con documento d'identità e codice fiscale: si sceglie il medico di base e si riceve la tessera sanitaria. In caso di smarrimento la tessera sanitaria si richiede online.",
        ),
        "en": (
            "Health insurance: joining, paying and claims",
            "Residents pay health insurance contributions between September and December by bank or app. Hospital costs are reimbursed in part; treatment in another city must be registered first. Report a lost medical insurance card at once.",
        ),
    },
    "public_housing": {
        "codes": ["housing-subsidy"],
        "tags": ["casa popolare", "social housing", "公租房", "سكن اجتماعي"],
        "phones": [],
        "zh": (
            "公租房申请和住房补贴",
            "本市户籍低收入住房困难家庭可以申请公共租赁住房或租房补贴。申请材料包括身份证、户口簿、收入证明和住房情况证明，由街道受理，审核公示后轮候配租。",
        ),
        "ar": (
            "طلب السكن الاجتماعي وبدل الإيجار",
            "يمكن للأسر ذات الدخل المحدود التي لا تملك سكناً مناسباً طلب شقة سكن اجتماعي أو بدل إيجار. أرفق الهوية وإثبات الدخل ووضع السكن، ويُدرج الطلب في قائمة الانتظار بعد الدراسة.",
        ),
        "it": (
            "Domanda di casa popolare e contributo affitto",
            "Le famiglie a basso reddito possono partecipare al bando per l'assegnazione di una casa popolare o chiedere il contributo per l'affitto. Servono ISEE, documento d'identità e contratto di locazione; le graduatorie sono pubblicate dal comune.",
        ),
        "en": (
            "Social housing and rent support",
            "Low-income households without adequate housing can apply for social housing or a rent subsidy. Attach ID, proof of income and your housing situation; after assessment you join the waiting list.",
        ),
    },
    "business_license": {
        "codes": ["business-license"],
        "tags": ["partita iva", "company registration", "营业执照", "رخصة تجارية"],
        "phones": [],
        "zh": (
            "营业执照办理和个体户注册",
            "开办企业或个体工商户可以在政务服务网全程网上办理营业执照，提交名称、经营范围、住所和投资人身份证明，材料齐全的1个工作日内办结，免费领取电子营业执照。",
        ),
        "ar": (
            "استخراج السجل التجاري والرخصة التجارية",
            "يمكن تأسيس شركة أو مشروع فردي واستخراج الرخصة التجارية عبر بوابة الخدمات الحكومية بتقديم الاسم والنشاط والعنوان وهوية المالك، وتصدر الرخصة خلال يوم عمل واحد.",
        ),
        "it": (
            "Aprire un'attività: partita IVA e SCIA",
            "Per avviare un'impresa si apre la partita IVA all'Agenzia delle Entrate, si iscrive l'impresa al Registro delle imprese della Camera di commercio e si presenta la SCIA allo sportello unico attività produttive del comune.",
        ),
        "en": (
            "Registering a business and getting a licence",
            "Register a company or sole trader and get the business licence online on the government services portal with the name, activities, address and owner's ID. Complete applications are approved within one working day.",
        ),
    },
    "renovation_permit": {
        "codes": ["building-permit"],
        "tags": ["ristrutturazione", "building work", "装修", "ترميم"],
        "phones": [],
        "zh": (
            "房屋装修备案和施工时间",
            "住宅装修开工前需要到物业办理装修备案，涉及拆改承重墙、外立面的需要申请规划许可。装修施工时间为工作日8点至12点、14点至18点，节假日不得进行噪音施工。",
        ),
        "ar": (
            "تصريح ترميم المنزل وأعمال البناء",
            "قبل بدء ترميم المنزل سجّل الأعمال لدى إدارة المبنى، وتحتاج الأعمال التي تمس الجدران الحاملة أو الواجهة إلى رخصة بناء من البلدية. يُسمح بأعمال الترميم في أيام العمل فقط.",
        ),
        "it": (
            "Lavori di ristrutturazione: CILA e permesso di costruire",
            "Per ristrutturare casa serve la CILA per i lavori di manutenzione straordinaria; per opere strutturali o sulla facciata occorre il permesso di costruire. I lavori rumorosi sono ammessi nei giorni feriali dalle 8 alle 13 e dalle 15 alle 19.",
        ),
        "en": (
            "Home renovation and building permits",
            "Register home renovation work with your building management before starting; changes to load-bearing walls or the facade need a building permit. Noisy work is allowed on weekdays only, 8 to 12 and 2 to 6.",
        ),
    },
    "air_pollution": {
        "codes": ["air-pollution"],
        "tags": ["smog", "fumo", "空气污染", "تلوث الهواء"],
        "phones": ["12369"],
        "zh": (
            "空气污染、露天焚烧和油烟投诉",
            "工厂排放黑烟、露天焚烧垃圾秸秆、餐馆油烟扰民可以向生态环境部门投诉，请说明位置、时间和污染情况，环保举报热线12369。",
        ),
        "ar": (
            "شكوى تلوث الهواء والدخان",
            "يمكن الإبلاغ عن الدخان الأسود من المصانع أو حرق النفايات في الهواء الطلق أو روائح المطاعم لدى إدارة البيئة، مع ذكر الموقع والوقت ونوع التلوث.",
        ),
        "it": (
            "Inquinamento dell'aria, fumi e roghi",
            "Fumo nero da fabbriche, roghi di rifiuti all'aperto e fumi di cucine dei ristoranti si segnalano all'ufficio ambiente indicando luogo, orario e tipo di inquinamento.",
        ),
        "en": (
            "Air pollution, smoke and open burning",
            "Report black smoke from factories, open burning of rubbish or cooking fumes from restaurants to the environment office, with the location, the time and what the pollution is like.",
        ),
    },
    "drainage": {
        "codes": ["blocked-drain"],
        "tags": ["fogna", "flood", "下水道", "صرف صحي"],
        "phones": [],
        "zh": (
            "下水道堵塞、污水外溢和道路积水",
            "道路积水、雨水井堵塞、污水冒溢请报告具体位置，排水部门会在2小时内到场疏通。暴雨期间地下车库进水等险情请拨打119。",
        ),
        "ar": (
            "انسداد الصرف الصحي وتجمع مياه الأمطار",
            "أبلغ عن انسداد المجاري أو فيضان مياه الصرف أو تجمع مياه الأمطار في الطريق مع الموقع بالتحديد، وسيصل فريق الصرف الصحي خلال ساعتين لفتح الانسداد.",
        ),
        "it": (
            "Fogne intasate, tombini e allagamenti",
            "Segnalate allagamenti della strada, tombini intasati o fuoriuscite dalle fogne indicando il punto esatto: la squadra fognature interviene entro due ore. Durante i temporali, per garage allagati chiamate i vigili del fuoco.",
        ),
        "en": (
            "Blocked drains, sewage and flooding",
            "Report flooded roads, blocked storm drains or sewage overflowing with the exact location: the drainage team arrives within two hours to clear it. For flooded garages during storms call the fire brigade.",
        ),
    },
    "library": {
        "codes": ["library-card"],
        "tags": ["biblioteca", "books", "图书馆", "مكتبة"],
        "phones": [],
        "zh": (
            "图书馆借书证办理和借阅规则",
            "市民凭身份证可以在市图书馆免费办理借书证，每次可借10本书，借期30天，可以在网上续借一次。逾期未还会暂停借阅。",
        ),
        "ar": (
            "بطاقة المكتبة العامة واستعارة الكتب",
            "يمكن لكل مواطن استخراج بطاقة المكتبة العامة مجاناً بالهوية، واستعارة عشرة كتب لمدة 30 يوماً مع تجديد واحد عبر الإنترنت.",
        ),
        "it": (
            "Tessera della biblioteca e prestito dei libri",
            "La tessera della biblioteca comunale è gratuita: basta un documento d'identità. Si possono prendere in prestito fino a dieci libri per trenta giorni e rinnovare il prestito online una volta.",
        ),
        "en": (
            "Library card and borrowing books",
            "A public library card is free with your ID. You may borrow up to ten books for 30 days and renew a loan online once; overdue books suspend borrowing.",
        ),
    },
}
