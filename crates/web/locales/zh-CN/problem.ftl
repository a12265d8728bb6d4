## 问题管理与已知错误数据库（REQUIREMENTS §4）

nav-problems = 问题
nav-known-errors = 已知错误数据库
nav-trends = 事件趋势
nav-articles = 知识库文章

problem-list-title = 问题
problem-new-title = 提出问题
problem-action-raise = 提出问题
problem-assignee = 处理人
problem-known-error = 已知错误
problem-problem = 问题
problem-analysis = 根本原因分析
problem-incidents = 关联事件
problem-panel-title = 问题管理
problem-unknown = 尚未查明
problem-none = 暂无
problem-published = 已发布到门户
problem-not-published = 未发布
problem-yes = 是
problem-no = 否
problem-language-en = 英语（English）
problem-language-zh-CN = 简体中文
problem-help-incidents = 本项目的事件编号（INC-000042），用逗号分隔。
problem-help-root-cause = 查明根本原因之前请留空。
problem-help-translation = 以另一种语言填写同一记录，供使用该语言的客户阅读。

## 取值
problem-status-new = 新建
problem-status-under-investigation = 调查中
problem-status-known-error = 已知错误
problem-status-resolved = 已解决
problem-status-closed = 已关闭
problem-source-incident-trend = 事件趋势
problem-source-major-incident = 重大事件
problem-source-proactive = 主动发现
problem-source-supplier = 供应商通知
problem-rca-five-whys = 五问法
problem-rca-ishikawa = 鱼骨图（石川图）
problem-rca-kepner-tregoe = KT 分析法
problem-rca-fault-tree = 故障树分析
problem-rca-other = 其他
problem-closure-resolved = 解决后关闭
problem-closure-cancelled = 已取消

## 操作
problem-action-investigate = 开始调查
problem-action-reassign = 重新分派
problem-action-record-rca = 记录分析
problem-action-record-workaround = 记录临时解决方案
problem-action-declare-known-error = 登记已知错误
problem-action-set-publication = 发布或撤回
problem-action-resolve = 解决
problem-action-reopen = 重新打开
problem-action-close = 关闭
problem-action-cancel = 取消
problem-action-edit = 编辑详情
problem-action-link-to-problem = 关联到问题
flash-problem-not-found = 没有该问题。
problem-action-link = 关联事件
problem-action-link-known-error = 关联到本工单
problem-action-raise-from-incident = 提出问题
problem-action-raise-from-these = 基于这些事件提出问题

## 趋势
problem-trend-title = 事件趋势
problem-trend-help = 按类别、服务或配置项统计各时期的事件数：反复出现的即为候选问题。
problem-trend-by-category = 按类别
problem-trend-by-service = 按服务
problem-trend-by-ci = 按配置项
problem-trend-week = 周
problem-trend-month = 月
problem-trend-none = （无）
problem-trend-show = 显示
problem-trend-total = 合计
problem-trend-choose-project = 选择服务项目后，可基于某一行提出问题。

## 已知错误数据库与门户
problem-kedb-title = 已知错误数据库
problem-suggest-title = 是否与已知错误匹配？
problem-suggest-none = 没有匹配的已知错误。
problem-suggest-help = 输入标题或描述以查找已知错误。
problem-articles-title = 知识库文章
problem-articles-empty = 暂无向贵组织发布的文章。

## 字段
field-source = 来源
field-service-id = 受影响的服务
field-incident-ids = 事件
field-rca-method = 分析方法
field-rca-findings = 分析发现
field-rca-recorded-by = 分析记录人
field-findings = 分析发现
field-root-cause = 根本原因
field-workaround = 临时解决方案
field-workaround-recorded-by = 临时解决方案记录人
field-fixing-change-id = 修复变更
field-symptoms = 症状
field-translation-title = 标题（另一种语言）
field-translation-symptoms = 症状（另一种语言）
field-translation-workaround = 临时解决方案（另一种语言）
field-publish-to-portal = 发布到门户
field-problem-id = 问题
field-known-error-id = 已知错误
field-dimension = 分组方式
field-bucket = 时间粒度
field-periods = 时期数

## 错误
err-not-an-incident = 服务请求不由问题引起。
err-other-project = 该事件属于另一个服务项目。
err-root-cause-or-workaround = 请先记录根本原因或临时解决方案。
err-workaround-required = 只有带临时解决方案的已知错误才能发布。
err-too-few = 该来源所需的事件数量不足。
err-problem-closed = 问题已解决或已关闭。
err-too-many = 一次数量过多。
problem-suggest-matched = 匹配依据：{ $reasons }
problem-suggest-reason-same-ci = 相同配置项
problem-suggest-reason-related-ci = 其运行或依赖的配置项
problem-suggest-reason-same-category = 相同分类
problem-suggest-reason-text = 文本
