//! The detector's rules, written from the language people use about suicide and self-harm, and the exceptions
//! that keep idioms, hyperbole, negation, reported speech and technical uses quiet.
//!
//! Patterns are plain lower-case English regular expressions; [`crate::normalize::compile_pattern`] folds them
//! like the text (so `kill` also matches `k1ll`, `kiiill` and `k i l l`, and `don't` matches `dont`).
//! Rule ids are `family.name`; the family says what kind of language fired.

use super::CrisisLevel::{self, Mention, SelfRisk, ThirdParty};

/// A pattern that raises a message to a level.
pub(super) struct Rule {
    pub id: &'static str,
    pub level: CrisisLevel,
    pub strength: Strength,
    pub pattern: &'static str,
}

/// How much a hit needs from the rest of the message to stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Strength {
    /// Stands on its own.
    Strong,
    /// Also used as hyperbole or about the past ("this song makes me want to die", "six years ago I wanted to
    /// kill myself"): stands unless [`NOT_NOW`] shows near the hit and no [`DISTRESS`] in the message.
    Ambiguous,
    /// Says little alone ("I just want it to end", "suicide"): stands when the message also shows [`DISTRESS`].
    Weak,
}

/// Words before a hit that negate it ("I'm not suicidal", "I don't want to die"), looked for in the
/// [`NEGATION_WINDOW`] words before the hit, within its clause.
pub(super) const NEGATION: &str = r"\b(not|never|no longer|don't|didn't|doesn't|won't|wouldn't|isn't|aren't|wasn't|weren't|haven't|hasn't|hadn't|nor|without)\b";
pub(super) const NEGATION_WINDOW: usize = 3;
pub(super) const NOT_NOW_REACH: usize = 60;

/// Signs that an ambiguous phrase is not a crisis now: a joke or hyperbole (laughter, "literally", a trivial
/// cause) or a time long past; looked for within [`NOT_NOW_REACH`] bytes of the hit.
pub(super) const NOT_NOW: &str = r"\b(lol|lmao|lmfao|rofl|haha[ha]*|hehe[he]*|jk|jking|xd|omg|omfg|bruh|literally|lowkey|ngl|makes me|made me|making me|every ?time|when i see|looking at|watching|listening to|this (song|game|show|movie|video|episode|post|tweet|class|homework|lag))\b|😂|🤣|💀|🙃|😆|\b(\d+|a few|few|many|several|two|three|four|five|six|seven|eight|nine|ten) (years|yrs) ago\b|\bwhen i was (a kid|a teen|younger|little|\d+)\b|\bback (then|in (high school|middle school|school|college))\b|\bin (high school|middle school|(first|second|third|fourth|fifth) (year|grade))\b";

/// Signs that the writer is in distress, one family each: a weak phrase stands when one of them shows, and
/// [`MANY_DISTRESS_SIGNS`] of them together count as the writer's own crisis even without a crisis phrase.
pub(super) const DISTRESS: &[&str] = &[
    r"\b(tired of|can't keep) fighting\b|\bcan't fight (this|it) any ?more\b|\bnothing left\b",
    r"\bi (have|got|suffer from|struggle with|deal with|am dealing with|battle|live with)( [a-z]+){0,2} (depression|anxiety|ptsd|bpd|bipolar)\b|\b(my|the) (depression|anxiety|ptsd|bpd|trauma)\b",
    r"\b(i'm|i am|i feel|i felt|feeling|i've been|i have been|been|i'm just|i get|i got|i was) ([a-z]+ ){0,3}(depressed|hopeless|worthless|useless|empty|numb|broken|miserable|trapped|desperate|overwhelmed)\b",
    r"\b(i'm|i am|i feel|feeling|i've been|been|i'm just|i was) ([a-z]+ ){0,3}(alone|lonely|isolated)\b|\b(my|the) loneliness\b",
    r"\b(i'm|i am|i feel|i've been|been|i'm just) ([a-z]+ ){0,3}(exhausted|tired|done|suffering|struggling|in pain|lost)\b|\b(my|the|this|so much) (pain|suffering)\b",
    r"\bi (hate|can't stand|despise|loathe) (myself|my life|living|being alive|who i am|everything about me)\b",
    r"\bcan't (take|do|handle|bear) (it|this|this life|any of this|life) any ?more\b|\bi can't (go on|keep going|do this)\b",
    r"\b(no one|nobody|noone) (cares|would care|loves me|would miss me|would notice|understands)\b",
    r"\b(give up|gave up|giving up)\b",
    r"\b(no|any|lost all|lost) (hope|point|reason|motivation)( left| anymore| to live)?\b|\bno way out\b|\bpointless\b|\bmeaningless\b",
    r"\bhelp me\b|\bneed help\b",
    r"\bdon't (care|feel anything) (anymore|any more)\b",
    r"\b(i'm|im|i am|i feel like) (such )?(a|the) (mess|failure|disappointment|loser|burden|problem)\b",
    r"\b(crying|cry|cried) (every|all|myself|again)\b|\bcan't stop crying\b",
];

/// How many distress families make a crisis on their own.
pub(super) const MANY_DISTRESS_SIGNS: usize = 3;

/// A pattern that vetoes the hits it overlaps, at the levels it names.
pub(super) struct Exception {
    pub id: &'static str,
    pub vetoes: &'static [CrisisLevel],
    pub pattern: &'static str,
}

const ALL: &[CrisisLevel] = &[SelfRisk, ThirdParty, Mention];
const SELF: &[CrisisLevel] = &[SelfRisk];
const ABOUT_SUICIDE: &[CrisisLevel] = &[Mention];

/// Checked in order; at each level the first rule that stands names the decision.
pub(super) const TRIGGERS: &[Rule] = &[
    // --- the writer's own intent, plans and methods
    Rule {
        id: "self.intent.kill-myself",
        level: SelfRisk,
        strength: Strength::Ambiguous,
        pattern: r"\b(kill|killing|end|ending|off|offing|hang|hanging|shoot|shooting|drown|drowning|overdose|overdosing|poison|poisoning|suffocate|suffocating|gas|gassing|electrocute|electrocuting) (my ?self|me ?self)\b|\bif i (killed|ended|offed) (my ?self|me ?self)\b",
    },
    Rule {
        id: "self.intent.end-my-life",
        level: SelfRisk,
        strength: Strength::Strong,
        pattern: r"\bend (our|my) lives\b|\bend (this|my) (stupid |miserable |pathetic )?life\b|\bways? to end (it all|life|this life|things)\b|\b(going to|gonna|will|i'll|ready to|decided to|plan to|planning to|about to) end it( all)?( on| tonight| today| soon| now| before| this| after| when|\.|$)|\b(end|ending|take|taking) my (own )?life\b|\b(end|ending) (it|this|everything|things) (all|tonight|today|now|soon|for good|once and for all)\b|\b(end|ending) it all\b|\bend my (suffering|existence)\b",
    },
    Rule {
        id: "self.intent.commit-suicide",
        level: SelfRisk,
        strength: Strength::Strong,
        pattern: r"\b(i|i'm|i am|i'll|i will|i'd|gonna|going to|want to|wanna|plan to|planning to|about to|ready to|decided to|trying to|try to|tried to|attempt to|attempted to|might|should|thinking about|think about|consider|considering|contemplating) (just )?(commit|commiting|committing|attempt|attempting) suicide\b|\bi (have )?(attempted|tried) suicide\b",
    },
    Rule {
        id: "self.plan.method",
        level: SelfRisk,
        strength: Strength::Strong,
        pattern: r"\bi (just )?(overdosed|oded|took an overdose)\b|\b(took|swallowed|downed) the rest of (my|the) (pills|meds|medication|sleeping pills|tablets|painkillers)\b|\bjump(ing)? to (my )?death\b|\b(throw|throwing|threw) myself (in front of|off|under)\b|\b(thinking|thought) (of|about) jumping\b|\bblow my brains out\b|\beat a bullet\b|\bshoot (myself|yourself) in the (head|mouth|temple|chest)\b|\b(cut|burn|harm|hurt) myself (sometimes|often|again|every|daily|to feel)\b|\b(slit|slitting|slice|slicing|open|opening) my (wrists?|throat|veins)\b|\b(i|i'm|im|i am|i will|i'll|i'd|gonna|going to|want to|wanna|thinking about|thinking of|plan to|planning to|about to|could just|should just|might) (just )?(jump|jumping|throw myself) (off|from|in front of) (a|the|this|that|my) (bridge|building|roof|cliff|balcony|train|car|bus|window|tower|overpass|ledge)\b|\b(took|take|taking|swallow|swallowed|swallowing|downed|overdose on|od on) (all|a (whole )?(bunch|bottle|handful|box|pack) of|the whole (bottle|box|pack) of) (my |the |of my |of the |these |those )?(pills|meds|medication|sleeping pills|tablets|painkillers|antidepressants)\b|\b(i|i'm|im|gonna|going to|want to|wanna|plan to|planning to|try to|tried to|will|i'll|about to) (overdose|od)\b|\b(tie|tied|tying|made|make|making|bought|buy|have|got|get) (a|the|my) noose\b",
    },
    Rule {
        id: "self.plan.how-to",
        level: SelfRisk,
        strength: Strength::Strong,
        pattern: r"\b(researching|looking up|googling|searching|reading about|read about) (ways|methods|how) to (die|kill myself|overdose|end it|end my life)\b|\b(best|easiest|quickest|painless|good|effective|surest|fastest|reliable)? ?(way|ways|method|methods) to (commit suicide|kill myself|end my life)\b|\b(painless|quick|quickest|easiest|least painful|fastest|surest|best|most effective) (way|ways|method|methods) to (die|go|end (it|my life|things)|kill myself|do it|unalive)\b|\bpainless (death|suicide)\b|\bhow (to|can i|do i|could i|would i|should i) die\b",
    },
    Rule {
        id: "self.farewell",
        level: SelfRisk,
        strength: Strength::Strong,
        pattern: r"\b(not|never) going to be (here|around) (much longer|tomorrow|anymore|for long)\b|\b(wrote|writing|write|written|left|leave|leaving) (a|my) (suicide|goodbye) (note|letter)\b|\bmy (last|final) goodbye\b|\bthis is (my )?goodbye( forever)?\b|\bgoodbye (forever|cruel world)\b|\bgoodnight forever\b|\b(won't|will not) be (here|around|alive) (tomorrow|much longer|anymore|by (tomorrow|morning|monday|the weekend|next week))\b|\bby the time (you|anyone|someone|people) (read|reads|see|sees|find|finds) this\b|\b(giving|gave|give) away (all )?(my|all my) (stuff|things|belongings|possessions|pets?)\b",
    },
    // --- the writer's own ideation, explicit and passive
    Rule {
        id: "self.ideation.want-to-die",
        level: SelfRisk,
        strength: Strength::Ambiguous,
        pattern: r"\bworth more dead( than alive)?\b|\b(just )?waiting to die\b|\b(begging|praying|wishing|longing|hoping) for (death|my death|it to end)\b|\b(i'm|i am) done with (life|living|this life|my life)\b|\bwant (me|myself) dead\b|\bwhy (tf |the fuck |the hell )?am i (still )?(alive|here|breathing)\b|\b(wish|hope) (that )?i (would|could) (get|be) ([a-z]+ ){0,3}(fatal|killed|hit by)\b|\bdon't plan on (turning \d+|living (past|to|much|long)|being (here|alive) (much|next|by))\b|\b(want|wanna|wanted|wanting|ready|need|like|love|wish|hope|plan|planning) (to )?die\b|\b(wish|hope|pray|praying) (that )?i (was|were|could be|would be) dead\b|\b(wish|hope|pray|praying) (that )?i (could |would |will |just )?die\b|\bdie in my sleep\b|\bi (deserve to|should) (die|be dead)\b|\b(i'd|i would|i'm|i am|i'd be|i would be) (be )?better off dead\b|\bbetter off without me\b|\bbetter off if i (was|were|wasn't|weren't) (gone|dead|here|around|never born|alive)\b",
    },
    Rule {
        id: "self.ideation.passive",
        level: SelfRisk,
        strength: Strength::Strong,
        pattern: r"\b(want|wanna|going|ready|need) to stop (living|existing|breathing)\b|\b(no|lost (the|my|all)) will to live\b|\b(don't|do not|can't|cannot) see (the|any) point (in|of) (living|life|going on|being alive|staying alive)\b|\b(my )?life (isn't|is not|ain't|isnt) worth (living|it)\b|\bnot worth living\b|\bhate being alive\b|\bregret (ever )?being born\b|\b(everyone|everybody|the world|my family|they) would be (better|happier) (off )?without me\b|\b(given|give|gave) up on (life|living)\b|\b(sleep|asleep)( [a-z]+)? (and|&) (never|not) wake up\b|\b(hope|hopefully|wish|pray|praying) (that )?i (don't|do not|never|won't|will not|wouldn't) wake up\b|\b(sleep|go to sleep|fall asleep) (and|&) (never|not) wake up\b|\b(don't|do not|never) (even )?want to wake up\b|\bnever wake up again\b|\b(sleep|rest) forever\b|\bdisappear forever\b|\b(don't|do not) (really |even |just )?want to (live|be alive|exist|keep living|stay alive)\b|\b(don't|do not) (really |even |just )?want to (be here|be around|go on|keep going) anymore\b|\bwish i (was|were|had) never (been )?born\b|\bwish i (didn't|did not|never) exist(ed)?\b|\bwant to (stop existing|not exist|cease to exist|not be alive)\b|\b(tired|sick) of (living|being alive|existing)\b|\bdone (with )?living\b|\b(no|zero) (reason|reasons) (left )?to (live|stay alive|keep living|keep going)\b|\bnothing (left )?to live for\b|\bno point (in )?(living|being alive|going on|staying alive)\b|\bwhat'?s the point (of|in) (living|being alive|going on|staying alive)\b|\bwhy (should|would) i (keep living|stay alive|live|go on)\b|\bcan't (go on|keep going|keep living|live) like this\b|\bwant (it all|everything|my life|all of (it|this)|this all) to (end|be over|stop)\b",
    },
    Rule {
        id: "self.ideation.nobody-would-care",
        level: SelfRisk,
        strength: Strength::Strong,
        pattern: r"\b(nobody|no one|noone|who|anyone|people)( would| will| even| really)* (care|notice|miss me|be sad|cry)[^.!?]{0,15} if i (died|was gone|were gone|disappeared|killed myself|was dead|were dead|wasn't here|wasn't around|wasn't alive|ended it|committed suicide|never woke up)\b",
    },
    Rule {
        id: "self.ideation.suicidal",
        level: SelfRisk,
        strength: Strength::Strong,
        pattern: r"\bi (myself )?(have|had|get|got|am having|'m having|'ve had|'ve been having|struggle with|deal with|am dealing with|battle|live with|suffer from)( [a-z]+){0,3} suicidal (thoughts|ideation|feelings|urges|tendencies)\b|\b(i'm|i am|feel|feeling|i feel|been|getting|i've been|being|so) ([a-z]+ ){0,4}(depressed|anxious|lonely|sad|hopeless|miserable|empty) and suicidal\b|\b(i'm|i am|i feel|feeling|felt|i've been|been|getting|got|get|i was|being|i get|am|become|became|becoming) ((so|very|really|extremely|pretty|kinda|kind of|a bit|a little|still|always|constantly|actively|passively|super|fucking|lowkey|lately|again|incredibly|severely|chronically|genuinely|seriously|just|also|too|more) )*suicidal\b|\bmy (suicidal (thoughts|ideation|ideations|feelings|urges|thinking|tendencies)|suicidality|suicide (attempts?|plans?|notes?)|(last|first|second|third|latest|recent) (suicide )?attempts?)\b|\b(making|made|makes) me (feel )?suicidal\b|\b(i'm|i am|i|i've|i have|been|keep|still|started|having|have) (been )?(having|getting|had|got|get|have) ((really|very|bad|some|strong|intense|constant|frequent|these|more|a lot of|lots of) )*(suicidal (thoughts|ideation|feelings|urges)|thoughts (of|about) (suicide|killing myself|ending (it|my life)|dying))\b|\b(i|i've|i'm|i am|been|i keep|keep|always|constantly|often) (been )?(thinking|thought|think) (about|of) (suicide|killing myself|ending (it|it all|my life|things)|taking my (own )?life|not waking up)\b|\bsuicide (is|seems|feels like) (the only|my only|the best|the answer|my way|an option|the way out|tempting|appealing)\b",
    },
    // --- evasive words for suicide and self-harm, said of oneself
    Rule {
        id: "self.slang.kms",
        level: SelfRisk,
        strength: Strength::Strong,
        pattern: r"\bkms\b|\b(unalive|unaliving|self unalive) (my ?self|me)\b",
    },
    Rule {
        id: "self.slang.evasive",
        level: SelfRisk,
        strength: Strength::Strong,
        pattern: r"\b(i|i'm|i am|want to|wanna|gonna|going to|thinking (about|of)|thoughts of|plan to|planning to|about to|might|should|will|i'll|considering|contemplating|urge to|urges to) (just |really |seriously |actually )?(sewer ?slide|sewerslide|unalive|unaliving|self[- ]?unalive|ctb|catch the bus|commit toaster bath|commit sudoku|self[- ]?delete|self ?deleting)\b|\b(my|relapsed on|relapsing on|relapse on|urges to|urge to) (si|sh)\b|\b(si|sh) (urges|thoughts|relapse|scars|is bad|is getting (bad|worse))\b",
    },
    Rule {
        id: "self.self-harm",
        level: SelfRisk,
        strength: Strength::Strong,
        pattern: r"\b(i|i've|i have) (cut|relapsed) (again|tonight|today|last night|yesterday)\b|\bsince i('ve| have)? (last )?cut\b|\bso i cut\b|\b(cutting|harming|hurting|burning|scratching) myself\b|\bi (cut|harm|burn) myself\b|\b(want|wanna|going|gonna|urge|urges|need|keep|kept|started|start|been|stop|can't stop|thinking about|think about|thoughts of|plan|planning|tempted|relapsed|relapse) (to )?(hurt|hurting|harm|harming|cut|cutting|burn|burning) myself\b|\b(i|i've|been|started|start|keep|relapsed|relapse|want to|wanna|urge to|urges to|stop|quit|addicted to|struggle with|struggling with|my) ((\w+) ){0,2}self[- ]?harm|\bfresh (cuts|wounds)\b",
    },
    Rule {
        id: "self.weak.ending",
        level: SelfRisk,
        strength: Strength::Weak,
        pattern: r"\bwhat'?s the point (of|in) (anything|trying|any of this|it all)\b|\bwish i could (just )?disappear\b|\b(will|would|could|is) (it|this|that|this much|that much) (be )?(enough to )?kill me\b|\b(most|least|more|less) painful (way|method|death)\b|\bmy life (is|feels) (like it's )?over\b|\b(don't know|not sure|no idea) how (much )?longer i can (go on|take|keep|do|hold on|last)\b|\bwant(ed)? it to be over\b|\bwithout me (here|around|in it)\b|\b(please|someone|somebody|just) kill me\b|\b(drive|drives|driving|drove) me to suicide\b|\bwant it (all )?over( with)?\b|\bcan't do (it|this) any ?more\b|\b(finally |i'm |im )?ending it\b|\bwant to end it\b|\b(want|need|wish) (it|this|the pain|everything|my life|all this) to (end|stop)\b|\b(want|need|looking for|find) (a|an|the) (easy )?way out\b|\b(do|doing) it (tonight|tomorrow|today|soon|this weekend|before)\b|\bi (have|made|got) (a|my) plan\b|\bhave everything planned\b|\b(end|stop) (the|this|my) pain\b|\b(disappear|not be here|not exist|be gone) (forever|anymore|for good)\b|\bsay(ing)? (my )?goodbyes?\b|\bi'm (done|finished)\b|\b(don't|do not) (want|wanna) to be here\b|\bwhy (live|should i live|am i (still )?alive|am i still here)\b|\b(thinking about|thoughts of|think about) (death|dying|ways to die|not being here|ending things)\b|\bcan't do this anymore\b|\bi (am|'m) (going|gonna) to die\b|\bready to go\b",
    },
    Rule {
        id: "self.weak.suicide-with-distress",
        level: SelfRisk,
        strength: Strength::Weak,
        pattern: r"\bsuicid(e|al|ality)\b|\bself[- ]?harm|\bunaliv(e|ing)\b|\b(cut|cutting|burn|burning) (myself|my (arms?|wrists?|legs?|thighs?))\b|\boverdos(e|ed|ing)\b",
    },
    // --- concern for someone else
    Rule {
        id: "third_party.reflexive",
        level: ThirdParty,
        strength: Strength::Strong,
        pattern: r"\b(kill|killing|end|ending|hurt|hurting|harm|harming|cut|cutting|unalive|unaliving|hang|hanging|shoot|shooting|overdose|overdosing) (him|her|them|their) ?sel(f|ves)\b|\b(end|ending|take|taking) (his|her|their) (own )?life\b",
    },
    Rule {
        id: "third_party.suicidal",
        level: ThirdParty,
        strength: Strength::Strong,
        pattern: r"\b(he|she|they|friend|brother|sister|mom|mum|dad|mother|father|son|daughter|partner|boyfriend|girlfriend|bf|gf|husband|wife|cousin|roommate|classmate|bestie|someone|somebody|student|child|kid|teen|coworker|colleague)('s| is| was| has been| been| seems| sounds| might be| may be| could be| feels| feeling| became| gets| getting| got| is being)( (so|very|really|extremely|pretty|kinda|kind of|a bit|a little|still|always|constantly|actively|super|lowkey|seriously|severely|also|now|again))* suicidal\b",
    },
    Rule {
        id: "third_party.wants-to-die",
        level: ThirdParty,
        strength: Strength::Strong,
        pattern: r"\b(he|she|they|friend|brother|sister|mom|mum|dad|mother|father|son|daughter|partner|boyfriend|girlfriend|bf|gf|husband|wife|cousin|roommate|classmate|bestie|someone|somebody) ([a-z]+ ){0,5}(wants|wanted|want|is going|was going|plans|planning|threatening|threatened|threatens|talking about|talks about|talked about|talking about wanting|talks about wanting|wanting|tried|trying|attempted|said (he|she|they) (wants?|wanted)|says (he|she|they) (wants?|wanted))( to)? (die|commit suicide|suicide|end (it all|his life|her life|their life|things))\b",
    },
    Rule {
        id: "third_party.worried",
        level: ThirdParty,
        strength: Strength::Strong,
        pattern: r"\b(worried|scared|afraid|concerned|terrified|fear)( about| that| for)? ([a-z]+ ){0,4}(suicidal|(might|may|could|will|would|is going to|gonna) (kill|hurt|harm) (him|her|them)sel(f|ves)|do something to (him|her|them)sel(f|ves))\b|\bhow (do|can|should|could) (i|we|you) (help|support|talk to|save|stop|reach) ([a-z]+ ){0,4}(suicidal|from (killing|hurting|harming) (him|her|them)sel(f|ves)|self[- ]?harm(ing)?)\b",
    },
    // --- suicide as a topic
    Rule {
        id: "mention.suicide",
        level: Mention,
        strength: Strength::Strong,
        pattern: r"\bsuicid(e|es|al|ality|ally)\b|\bself[- ]?harm|\bunaliv(e|ed|ing)\b|\bsewer ?slide\b|\bkilled (him|her|them)sel(f|ves)\b|\btook (his|her|their) (own )?life\b",
    },
];

/// Each vetoes the trigger hits it overlaps, at the levels it names.
pub(super) const EXCEPTIONS: &[Exception] = &[
    Exception {
        id: "negation.used-to",
        vetoes: ALL,
        pattern: r"\bused to (be |feel |get |want to |think about |have )?(suicidal|kill myself|die|self[- ]?harm|suicidal thoughts)\b",
    },
    Exception {
        id: "hyperbole.laughing",
        vetoes: SELF,
        pattern: r"\b(kms|kill myself|killing myself|die|dying|dead) ((lol|lmao|lmfao|haha|hahaha|xd|jk|jking|rofl)\b|😂|🤣|💀)",
    },
    Exception {
        id: "hyperbole.die-of",
        vetoes: ALL,
        pattern: r"\b(die|dying|dead) (of|from) (embarrassment|cringe|laughter|laughing|boredom|shame|cuteness|happiness|excitement|heat|hunger|thirst|anticipation|jealousy|envy)\b|\bdie (laughing|happy|a little)\b|\bdie on (this|that|the) hill\b|\bwant to die on\b|\bdie (my|her|his|your|their) hair\b|\bdie for (him|her|you|them|jesus|god|christ|my country|my family|a good cause)\b|\b(would|'d) (rather|sooner) (die|kill myself|be dead)\b|\bkilling myself (laughing|trying|working|studying|at the gym|at work|over)\b",
    },
    Exception {
        id: "reported.told-to",
        vetoes: ALL,
        pattern: r"\b(told|tell|tells|telling|said|says|saying|asked|asking|wants|wanted|want|dared|called|yelled|screamed|texted|messaged|keep telling|kept telling) (me|him|her|them|us|you|people|someone|everyone|somebody) (to |that i should |i should |i should go |to go |that i need to |i need to )(go )?(kill (my|your) ?sel(f|ves)|kms|kys|die|end (my|your) life)\b|\b(told|tell|tells|telling) ([a-z]+ ){0,8}(to|should) (go )?kill (your|him|her|them) ?sel(f|ves)\b",
    },
    Exception {
        id: "reported.hostile",
        vetoes: ALL,
        pattern: r"\b(you|u|they|he|she|people|ppl) (should|can|could|need to) (go )?(kill|unalive) (your|them|him|her) ?sel(f|ves)\b",
    },
    Exception {
        id: "reported.other-subject",
        vetoes: SELF,
        pattern: r"\b(you|u|they|we|people|ppl|who|everyone|anyone|nobody|no one|most people|others|he|she) (([a-hj-z][a-z]*|i[a-z]{2,}) ){0,4}(want|wanna|wanted|wanting|wish|need|ready|like) to (die|kill (my|your|them) ?sel(f|ves))\b",
    },
    Exception {
        id: "accident.self-injury",
        vetoes: ALL,
        pattern: r"\b(cut|cutting|hurt|hurting|burn|burned|burnt|burning|harm) (my|him|her|them) ?sel(f|ves) (on|while|shaving|cooking|playing|at|during|by accident|accidentally|skiing|skating|running|working out|lifting|falling|in (the )?(gym|kitchen|game|practice))\b|\b(accidentally|almost|nearly) (cut|hurt|burn|burned|burnt|kill|killed) (my|him|her|them) ?sel(f|ves)\b",
    },
    Exception {
        id: "technical.names",
        vetoes: ABOUT_SUICIDE,
        pattern: r"\bsuicide (squad|burn|burns|doors?|king|kings|run|runs|sprints?|drills?|mission|missions|jump|pact|bomb|bombs|bomber|bombers|bombing|bombings|vest|vests|lane|blonde|linux)\b|\bsuicidal tendencies\b",
    },
    Exception {
        id: "technical.wake-up",
        vetoes: SELF,
        pattern: r"\bwant to wake up (early|at \d|for (school|work|class|the|my))\b",
    },
];

#[cfg(test)]
mod tests {
    use super::super::{CrisisLevel, Detector};
    use crate::normalize::normalize;

    /// Asserts every phrase of a family's table gets the level, naming the phrase when it does not.
    fn expect(level: CrisisLevel, phrases: &[&str]) {
        let detector = Detector::default();
        for phrase in phrases {
            let decision = detector.assess(&normalize(phrase));
            assert_eq!(decision.level, level, "{phrase:?} -> {decision:?}");
        }
    }

    #[test]
    fn explicit_intent() {
        expect(
            CrisisLevel::SelfRisk,
            &[
                "I want to kill myself",
                "i'm going to k1ll mys3lf tonight",
                "I think I'm going to end my life",
                "I'm planning to take my own life",
                "im gonna end it all",
                "I'm ready to end it tonight",
                "I want to commit suicide",
                "I tried suicide last year and I'm back there",
                "would anyone even care if i killed myself",
            ],
        );
    }

    #[test]
    fn passive_ideation() {
        expect(
            CrisisLevel::SelfRisk,
            &[
                "I wish I could sleep and never wake up",
                "I don't want to wake up tomorrow",
                "hopefully I don't wake up",
                "I just want to die",
                "i would like to die",
                "I don't want to be alive anymore",
                "i don t want to live",
                "I wish I was never born",
                "I'm so tired of living",
                "there's no reason to live",
                "everyone would be better off without me",
                "nobody would notice if I disappeared",
                "goodnight forever",
                "I want it all to end",
                "I can't go on like this",
                "my life isn't worth living",
                "I hate being alive",
                "the world would be better without me",
                "I've lost the will to live",
                "I want to stop existing",
                "I don't see the point in living",
            ],
        );
    }

    #[test]
    fn plans_methods_and_farewells() {
        expect(
            CrisisLevel::SelfRisk,
            &[
                "I've written my suicide note",
                "this is my final goodbye",
                "by the time you read this I'll be gone",
                "I won't be here tomorrow",
                "I've been giving away my things",
                "what's the most painless way to die",
                "I'm going to take all of my pills",
                "thinking of jumping off the bridge",
                "I just overdosed",
                "I took the rest of my sleeping pills",
                "I've been researching ways to die",
                "I'm not going to be around much longer",
            ],
        );
    }

    #[test]
    fn suicidal_feelings_and_history() {
        expect(
            CrisisLevel::SelfRisk,
            &[
                "I'm feeling really suicidal",
                "i've been so suicidal lately",
                "I keep having suicidal thoughts",
                "been thinking about suicide a lot",
                "my suicidal ideation is back",
                "suicide feels like the only way out",
            ],
        );
    }

    #[test]
    fn evasive_slang() {
        expect(
            CrisisLevel::SelfRisk,
            &[
                "kms",
                "honestly i might kms",
                "i want to unalive myself",
                "thinking about sewerslide",
                "i wanna sewer slide",
                "my SI is really bad today",
                "relapsed on sh",
                "K M S",
            ],
        );
    }

    #[test]
    fn self_harm() {
        expect(
            CrisisLevel::SelfRisk,
            &[
                "I've been cutting myself again",
                "I want to hurt myself",
                "I started self harming",
                "i cut myself when i'm sad",
            ],
        );
    }

    #[test]
    fn concern_for_someone_else() {
        expect(
            CrisisLevel::ThirdParty,
            &[
                "my friend said she wants to kill herself",
                "My brother is suicidal and I don't know what to do",
                "I'm worried my girlfriend might hurt herself",
                "how do I help a friend who is suicidal?",
                "he keeps talking about wanting to die",
                "my roommate is threatening to end his life",
            ],
        );
    }

    #[test]
    fn suicide_as_a_topic() {
        expect(
            CrisisLevel::Mention,
            &[
                "does ketamine help with suicidal ideation?",
                "Spravato is approved for depression with suicidal thoughts",
                "we lost my uncle to suicide last year",
                "is self-harm common in teens?",
                "my cousin took his own life",
            ],
        );
    }

    #[test]
    fn idioms_and_hyperbole_stay_quiet() {
        expect(
            CrisisLevel::None,
            &[
                "this homework is killing me",
                "kill the process with kill -9",
                "I'm dying to see the new movie",
                "I would die for a coffee right now",
                "I'd rather die than watch that again",
                "I'd die on that hill",
                "I almost died laughing",
                "i could die of embarrassment",
                "I want to die my hair blue",
                "I would die for you",
                "we killed it at the gig last night",
                "dead tired after work",
                "this game is killing me lol",
                "kms lmao",
                "I'm killing myself trying to finish this essay",
                "I cut myself while cooking",
                "one of these days I'm going to accidentally kill myself with this blender",
                "the Suicide Squad movie was bad",
                "the rocket did a suicide burn",
                "I don't want to wake up early for school",
                "six years ago I wanted to kill myself and now I love my life",
                "that's not the hill they want to die on",
            ],
        );
    }

    #[test]
    fn negation_reported_speech_and_others_stay_quiet() {
        expect(
            CrisisLevel::None,
            &[
                "I'm not suicidal, just tired",
                "I would never kill myself",
                "I didn't try to kill myself",
                "I don't want to die",
                "someone told me to kill myself in a game",
                "he told me to go die",
                "I used to be suicidal but therapy helped",
                "do you ever want to die of cringe",
                "people who want to die from boredom",
                "why would a father tell his son to kill himself?",
                "trolls saying they should kill themselves is not a joke",
                "they deserve to die for what they did",
                "life is worth living after all",
            ],
        );
    }
}
